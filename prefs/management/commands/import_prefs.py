"""`import_prefs PROJECT_ID FILE [--format F]`: the import endpoint's rules, from a shell."""

from __future__ import annotations

import shutil
import sys
import tempfile

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from prefs.formats.jsonl import IMPORT_FORMATS
from prefs.models import Project
from prefs.services.imports import ImportRejected, ImportTooLarge, import_run


class Command(BaseCommand):
    help = (
        "Imports a JSONL file (optionally gzipped; '-' reads stdin) into a project, all or "
        "nothing. Exits 1 listing every bad line."
    )

    def add_arguments(self, parser):
        parser.add_argument("project_id", type=int)
        parser.add_argument("file")
        parser.add_argument("--format", choices=IMPORT_FORMATS, default="auto", dest="fmt")
        parser.add_argument(
            "--queue-labelled", action="store_true",
            help="also queue rows that carry a preference for human review",
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, project_id, file, fmt, queue_labelled, no_progress, **options):
        project = Project.objects.filter(pk=project_id).first()
        if project is None:
            raise CommandError(f"No project with id {project_id}.")
        bars: dict[str, tqdm] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if no_progress:
                return
            bar = bars.get(phase)
            if bar is None:
                for other in bars.values():
                    other.close()
                bar = bars[phase] = tqdm(
                    total=total, desc=phase, unit="B", unit_scale=True, file=sys.stderr, leave=True
                )
            bar.update(done - bar.n)

        try:
            with self._open(file) as stream:
                result = import_run(
                    project=project, stream=stream, fmt=fmt, queue_labelled=queue_labelled,
                    progress=progress,
                )
        except ImportTooLarge as exc:
            raise CommandError(str(exc)) from exc
        except ImportRejected as exc:
            for error in exc.errors:
                where = f"line {error['line']}" if error["line"] is not None else "file"
                field = f" {error['field']}:" if error["field"] else ""
                self.stderr.write(f"{file}: {where}:{field} {error['message']}")
            if exc.error_count > len(exc.errors):
                self.stderr.write(f"… and {exc.error_count - len(exc.errors)} more")
            raise CommandError(str(exc)) from exc
        finally:
            for bar in bars.values():
                bar.close()
        created = ", ".join(f"{n} {kind}" for kind, n in result.created.items())
        self.stdout.write(
            f"Imported {result.rows} {result.format} rows into project {project.pk}: {created}; "
            f"{result.duplicates} duplicates skipped."
        )

    def _open(self, file: str):
        if file != "-":
            try:
                return open(file, "rb")  # noqa: SIM115
            except OSError as exc:
                raise CommandError(f"Cannot read {file}: {exc.strerror}") from exc
        # Standard input cannot be read twice; the import checks first, then writes.
        spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115
        shutil.copyfileobj(sys.stdin.buffer, spool)
        spool.seek(0)
        return spool
