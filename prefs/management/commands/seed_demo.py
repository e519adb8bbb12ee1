from __future__ import annotations

from django.core.management.base import BaseCommand

from prefs.services.demo import DEMO_USERS, demo_seed


class Command(BaseCommand):
    help = "Idempotent: the demo project, demo users, prompts and candidate pairs, ready to review."

    def handle(self, *args, **options):
        result = demo_seed()
        project = result["project"]
        self.stdout.write(
            f"Demo project {project.pk} ({project.name}): "
            f"{result['added_comparisons']} new comparisons, "
            f"{project.comparisons.count()} in all."
        )
        for username, role, password in DEMO_USERS:
            self.stdout.write(f"  {role:<8} {username} / {password}")
