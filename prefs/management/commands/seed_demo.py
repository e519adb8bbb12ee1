from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from prefs.services.demo import DEMO_USERS, DemoError, demo_seed


class Command(BaseCommand):
    help = "Idempotent: the demo project, demo users, prompts and candidate pairs, ready to review."

    def add_arguments(self, parser):
        parser.add_argument(
            "--allow-production", action="store_true",
            help="run even with PREFLOOP_ENV=production (adds users with the public demo passwords)",
        )

    def handle(self, *args, allow_production, **options):
        try:
            result = demo_seed(allow_production=allow_production)
        except DemoError as exc:
            raise CommandError(str(exc)) from exc
        project = result["project"]
        self.stdout.write(
            f"Demo project {project.pk} ({project.name}): "
            f"{result['added_comparisons']} new comparisons to review, "
            f"{result['labelled_pairs']} new on-policy pairs labelled by the simulated reviewer, "
            f"{project.comparisons.count()} comparisons in all."
        )
        for username, role, password in DEMO_USERS:
            if username in result["created_users"]:
                self.stdout.write(f"  {role:<8} {username} / {password}")
            else:
                # Its password may be a real one now: never printed, never changed.
                self.stdout.write(f"  {role:<8} {username} (existed already; left as it was)")
