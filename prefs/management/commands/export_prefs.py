"""`export_prefs SET_VERSION_ID --format F [-o FILE]`: the export endpoint's bytes, from a shell.

Writing to a file also writes FILE.meta.json beside it (the version's hash, rule and counts),
since a JSONL file of plain rows has no room for them, and shows a progress bar on stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from prefs.models import PreferenceSet
from prefs.services.exports import EXPORT_FORMATS, export_metadata, preference_set_export


class Command(BaseCommand):
    help = "Writes a frozen preference set in a training format to FILE (or stdout)."

    def add_arguments(self, parser):
        parser.add_argument("set_id", type=int, help="the preference set (version) id")
        parser.add_argument("--format", choices=EXPORT_FORMATS, required=True, dest="fmt")
        parser.add_argument("-o", "--output", default=None, help="file to write (default: stdout)")

    def handle(self, *args, set_id, fmt, output, **options):
        frozen = PreferenceSet.objects.filter(pk=set_id).first()
        if frozen is None:
            raise CommandError(f"No preference set with id {set_id}.")
        if output is None:
            out = sys.stdout.buffer
            for chunk in preference_set_export(frozen, fmt=fmt):
                out.write(chunk)
            out.flush()
            return
        path = Path(output)
        with tqdm(total=frozen.pair_count, desc=f"v{frozen.version} {fmt}", unit="pair",
                  file=sys.stderr) as bar, path.open("wb") as out:
            for chunk in preference_set_export(
                frozen, fmt=fmt, progress=lambda done: bar.update(done - bar.n)
            ):
                out.write(chunk)
        meta = path.with_name(path.name + ".meta.json")
        meta.write_text(json.dumps(export_metadata(frozen, fmt), indent=2, sort_keys=True) + "\n")
        self.stderr.write(f"Wrote {path} and {meta.name} (sha256 {frozen.sha256}).")
