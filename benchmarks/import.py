"""Benchmark: importing 100,000 native JSONL rows (the import service, both passes).

Against PostgreSQL in a scratch database this script creates and drops (or SQLite with
--sqlite). Rows look like Anthropic HH pairs in size (a ~250-character prompt, two ~300-character
replies); 80% carry a preference. Times the whole of `import_run`: every line checked and
written in one transaction. On a shared machine the wall-clock rate depends on what else runs,
so the CPU seconds of this process (both its threads) and of its PostgreSQL backend are
reported too. Last stdout line: JSON with `rows_per_s`.

    python benchmarks/import.py [--rows 100000] [--sqlite]
    python benchmarks/import.py --smoke [--sqlite]     # 300 rows: does it still run?

Target: >= 10,000 rows/s on the 2-core development machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TARGET_ROWS_PER_S = 10_000
WORDS = ["the", "a", "answer", "question", "help", "you", "can", "would", "please", "thanks", "about", "model", "data", "time", "people"]


def _recreate_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _drop_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _text(rng: random.Random, chars: int, tag: str) -> str:
    words = []
    size = 0
    while size < chars:
        word = rng.choice(WORDS)
        words.append(word)
        size += len(word) + 1
    return f"{tag} " + " ".join(words)


def write_rows(path: Path, rows: int, *, seed: int = 0) -> None:
    rng = random.Random(seed)
    preferences = [0, 1, 0, 1, 0, 1, 0, "tie", None, None]
    with path.open("w") as out:
        for i in range(rows):
            row = {
                "prompt": [{"role": "user", "content": _text(rng, 250, f"Q{i}")}],
                "responses": [
                    {"text": _text(rng, 300, f"A{i}"), "source": "model-a"},
                    {"text": _text(rng, 300, f"B{i}"), "source": "model-b"},
                ],
                "preference": preferences[i % len(preferences)],
            }
            out.write(json.dumps(row) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--sqlite", action="store_true", help="measure on a scratch SQLite file")
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--database", default="prefloop_bench_import")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks that the script runs (the test suite does)")
    args = parser.parse_args()
    if args.smoke:
        # Options given on the command line still win. The database is this run's own, so a smoke
        # run beside a measuring run never drops the measuring run's database.
        parser.set_defaults(rows=300, database=f"prefloop_smoke_import_{os.getpid()}")
        args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="prefloop-import-bench-"))
    if args.sqlite:
        db_url = f"sqlite:///{scratch / 'bench.sqlite3'}"
    else:
        db_url = args.admin_url.rsplit("/", 1)[0] + "/" + args.database
        _recreate_database(args.admin_url, args.database)
    env = {"DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": db_url, "DEBUG": "False",
           "LOG_LEVEL": "WARNING", "PREFLOOP_IMPORT_MAX_BYTES": str(2 * 1024**3)}
    os.environ.update(env)
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env={**os.environ}, check=True)
        import django

        django.setup()
        from prefs.models import Comparison, Project
        from prefs.services.imports import import_run

        source = scratch / "rows.jsonl"
        write_rows(source, args.rows)
        size_mb = source.stat().st_size / 1e6
        project = Project.objects.create(name="import bench")
        print(f"importing {args.rows:,} rows ({size_mb:.0f} MB) into "
              f"{'SQLite' if args.sqlite else 'PostgreSQL'} ...", file=sys.stderr)
        from django.db import connection

        backend = None
        if not args.sqlite:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                backend = cursor.fetchone()[0]
        load = os.getloadavg()[0]
        backend_before = _cpu_s(backend) if backend else 0.0
        cpu_before = time.process_time()
        start = time.perf_counter()
        with source.open("rb") as stream:
            result = import_run(project=project, stream=stream, fmt="native")
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu_before
        backend_cpu = _cpu_s(backend) - backend_before if backend else None
        assert result.created["comparisons"] == args.rows == Comparison.objects.filter(project=project).count()

        # A second import of the same file must write nothing: every row is a duplicate.
        again_start = time.perf_counter()
        with source.open("rb") as stream:
            again = import_run(project=project, stream=stream, fmt="native")
        again_seconds = time.perf_counter() - again_start
        rows_per_s = args.rows / seconds
        print(f"{args.rows:,} rows in {seconds:.1f} s: {rows_per_s:,.0f} rows/s "
              f"(target {TARGET_ROWS_PER_S:,}); re-import: {again.duplicates:,} duplicates "
              f"in {again_seconds:.1f} s", file=sys.stderr)
        print(f"CPU: this process {cpu:.1f} s ({args.rows / cpu:,.0f} rows per CPU second)"
              + (f", its PostgreSQL backend {backend_cpu:.1f} s "
                 f"({args.rows / max(backend_cpu, 1e-9):,.0f} rows per CPU second)" if backend else "")
              + f"; load average at the start {load:.1f} on {os.cpu_count()} cores", file=sys.stderr)
        print(json.dumps({
            "rows_per_s": round(rows_per_s),
            "rows": args.rows,
            "seconds": round(seconds, 2),
            "megabytes": round(size_mb, 1),
            "created": result.created,
            "duplicates": again.duplicates,
            "reimport_seconds": round(again_seconds, 2),
            "database": "sqlite" if args.sqlite else "postgresql",
            "process_cpu_s": round(cpu, 2),
            "postgres_cpu_s": round(backend_cpu, 2) if backend else None,
            "load_average": round(load, 1),
            "target_rows_per_s": TARGET_ROWS_PER_S,
        }))
    finally:
        if not args.sqlite:
            from django.db import connections

            connections.close_all()
            _drop_database(args.admin_url, args.database)
        # The rows file (about 80 MB at the full size) and the SQLite file.
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
