"""python manage.py round PROJECT_ID start|train|status: the rounds page, from a terminal."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from prefs.models import Project
from tuning.selectors import rounds_timeline
from tuning.services.rounds import RoundError, round_open, round_start, round_train


def _line(row: dict) -> str:
    round_ = row["round"]
    parts = [f"round {round_.number}: {row['state']}"]
    if round_.generate_job_id:
        parts.append(f"{row['judgments']}/{round_.target_judgments} judgments on {row['comparisons']} comparisons")
    if row["pairs"] is not None:
        parts.append(f"set v{round_.preference_set.version} ({row['pairs']} pairs)")
    if round_.train_job_id:
        parts.append(f"training job {round_.train_job_id}" + (f", {row['steps']} steps" if row["steps"] else ""))
    win = row["win"]
    if win and win["n"]:
        parts.append(f"win rate {win['rate']:.0%} (95% {win['low']:.0%}-{win['high']:.0%}, n={win['n']})")
    if row["drift"] is not None:
        parts.append(f"drift {row['drift']:.4f} nats/token")
    if row["adapter"] is not None:
        parts.append("promoted" if row["promoted"] else "not promoted")
    if row["warning"]:
        parts.append(f"warning: {row['warning']}")
    return "; ".join(parts)


class Command(BaseCommand):
    help = "Start a project's next round, train its open round now, or list its rounds."

    def add_arguments(self, parser):
        parser.add_argument("project_id", type=int)
        parser.add_argument("action", choices=("start", "train", "status"), nargs="?", default="status")

    def handle(self, *args, project_id: int, action: str, **options):
        project = Project.objects.filter(pk=project_id).first()
        if project is None:
            raise CommandError(f"project {project_id} does not exist")
        try:
            if action == "start":
                round_ = round_start(project=project)
                self.stdout.write(f"round {round_.number} started")
            elif action == "train":
                round_ = round_open(project)
                if round_ is None:
                    raise CommandError(f"project {project.name} has no round waiting to train; start one")
                job = round_train(round_=round_, force=True)
                self.stdout.write(f"round {round_.number} froze its data; training job {job.pk}")
        except RoundError as exc:
            raise CommandError(str(exc)) from exc
        for row in rounds_timeline(project):
            self.stdout.write(_line(row))
