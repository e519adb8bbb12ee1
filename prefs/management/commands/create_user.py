from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from prefs.services.users import ROLES, UserError, user_create_or_update, user_token


class Command(BaseCommand):
    help = "Creates or updates a user; --token prints an API token on the last line."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--role", choices=ROLES, required=True)
        parser.add_argument("--password", default=None)
        parser.add_argument(
            "--project", type=int, action="append", default=[], dest="projects",
            metavar="ID", help="a project this user reviews (repeatable)",
        )
        parser.add_argument("--token", action="store_true", help="print an API token last")
        parser.add_argument(
            "--force", action="store_true",
            help="accept a password that fails the password validators (tests, demos)",
        )
        parser.add_argument(
            "--keep-tokens", action="store_true",
            help="a new --password for an existing user keeps their API tokens (revoked otherwise)",
        )

    def handle(self, *args, name, role, password, projects, token, force, keep_tokens, **options):
        try:
            user, created, generated = user_create_or_update(
                username=name, role=role, password=password, project_ids=projects,
                check_password=not force, keep_tokens=keep_tokens,
            )
        except UserError as exc:
            raise CommandError(str(exc)) from exc
        verb = "Created" if created else "Updated"
        self.stdout.write(f"{verb} {role} {user.get_username()}")
        if generated:
            self.stdout.write(f"Password (shown once): {generated}")
        if token:
            self.stdout.write(user_token(user=user))
