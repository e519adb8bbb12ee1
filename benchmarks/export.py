"""Benchmark: freeze a 1,000,000-pair preference set and export it as `trl` JSONL over HTTP.

Production-style: gunicorn (one sync worker) serving Prefloop against PostgreSQL, in a scratch
database this script creates and drops. Setup writes N labelled comparisons (HH-sized texts:
a ~200-character prompt, two ~250-character replies) straight into the tables; then, timed,
the admin API freezes a version (POST .../preference-sets/) and streams its `trl` export
(GET .../export/?format=trl), read by a client in 1 MiB pieces. The server's peak memory is the
worker's VmHWM, reset before the export, so it covers the export alone (the freeze's peak is
reported too). On a shared machine the wall-clock rate depends on what else runs, so the CPU
seconds the worker and its PostgreSQL backend spent are reported as well: each side's rows per
CPU second bounds the rate when each has a core. Last stdout line: JSON with `rows_per_s` and
`peak_rss_mb`.

    python benchmarks/export.py [--pairs 1000000]
    python benchmarks/export.py --smoke     # 300 pairs: does it still run?

Targets: >= 100,000 rows/s and a peak under 300 MB. (For scale: a popular annotation tool's users
report about 4 minutes to export 50,000 records.)
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TARGET_ROWS_PER_S = 100_000
TARGET_PEAK_MB = 300
WORDS = ["the", "answer", "question", "help", "would", "please", "thanks", "model", "data", "time"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _recreate_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _drop_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _filler(i: int, chars: int) -> str:
    words = []
    size = 0
    k = i
    while size < chars:
        word = WORDS[k % len(WORDS)]
        words.append(word)
        size += len(word) + 1
        k = k * 7 + 3
    return " ".join(words)


def _seed(pairs: int) -> tuple[int, str]:
    """Writes `pairs` labelled comparisons; returns (project id, admin token)."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from rest_framework.authtoken.models import Token

    from prefs.hashing import canonical_json, pair_hash_of_hashes
    from prefs.models import Candidate, Comparison, Judgment, Project, Prompt
    from prefs.services.bulk import BulkTable

    admin = get_user_model().objects.create_user("bench-admin", password="bench-password", is_staff=True)
    project = Project.objects.create(name="export bench")
    chunk = 20_000
    for start in range(0, pairs, chunk):
        with transaction.atomic():
            prompts = BulkTable(Prompt, ("project_id", "messages", "content_hash"))
            candidates = BulkTable(Candidate, ("prompt_id", "text", "source", "text_hash"))
            comparisons = BulkTable(
                Comparison,
                ("project_id", "prompt_id", "candidate_a_id", "candidate_b_id", "required_judgments", "pair_hash"),
            )
            judgments = BulkTable(Judgment, ("comparison_id", "imported", "choice", "strength"))
            span = range(start, min(start + chunk, pairs))
            messages = [[{"role": "user", "content": f"Question {i}: {_filler(i, 190)}?"}] for i in span]
            prompt_hashes = [_sha(canonical_json(m)) for m in messages]
            prompt_ids = prompts.insert(
                (project.pk, json.dumps(m), h) for m, h in zip(messages, prompt_hashes, strict=True)
            )
            texts = [(f"Sure. {_filler(i + 1, 240)}.", f"No. {_filler(i + 2, 240)}.") for i in span]
            text_hashes = [(_sha(a), _sha(b)) for a, b in texts]
            candidate_ids = candidates.insert(
                row
                for pid, (a, b), (ha, hb) in zip(prompt_ids, texts, text_hashes, strict=True)
                for row in ((pid, a, "model-a", ha), (pid, b, "model-b", hb))
            )
            comparison_ids = comparisons.insert(
                (project.pk, pid, candidate_ids[2 * k], candidate_ids[2 * k + 1], 0,
                 pair_hash_of_hashes(ph, *text_hashes[k]))
                for k, (pid, ph) in enumerate(zip(prompt_ids, prompt_hashes, strict=True))
            )
            judgments.insert((cid, True, "AB"[cid % 2], 1 + cid % 3) for cid in comparison_ids)
        print(f"  seeded {min(start + chunk, pairs):,} / {pairs:,}", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    return project.pk, Token.objects.create(user=admin).key


def _worker_pid(master: int) -> int:
    for _ in range(100):
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise RuntimeError("gunicorn started no worker")


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _backend_cpu(db_url: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL client backend connected to the database at `db_url`."""
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        pids = [row[0] for row in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )]
    out = {}
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, PermissionError):
            out[pid] = _cpu_s(pid)
    return out


def _reset_peak(pid: int) -> None:
    # Writing 5 to clear_refs resets the peak resident set size (VmHWM) to the current one.
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--database", default="prefloop_bench_export")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks that the script runs (the test suite does)")
    args = parser.parse_args()
    if args.smoke:
        # Options given on the command line still win. The database is this run's own, so a smoke
        # run beside a measuring run never drops the measuring run's database.
        parser.set_defaults(pairs=300, database=f"prefloop_smoke_export_{os.getpid()}")
        args = parser.parse_args()

    db_url = args.admin_url.rsplit("/", 1)[0] + "/" + args.database
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": db_url,
           "DEBUG": "False", "LOG_LEVEL": "WARNING", "API_THROTTLE_USER": "1000000/min"}
    env.pop("REDIS_URL", None)
    os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "DEBUG", "LOG_LEVEL")})
    os.environ.pop("REDIS_URL", None)

    _recreate_database(args.admin_url, args.database)
    server = None
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        began = time.perf_counter()
        project_id, token = _seed(args.pairs)
        from django.db import connection, connections

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        connections.close_all()
        print(f"seeded {args.pairs:,} pairs in {time.perf_counter() - began:.0f} s", file=sys.stderr)

        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}",
             "--workers", "1", "--timeout", "1200", "--log-level", "warning"],
            cwd=ROOT, env=env, start_new_session=True,
        )
        for _ in range(300):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        worker = _worker_pid(server.pid)
        headers = {"Authorization": f"Token {token}"}

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1200)
        started = time.perf_counter()
        conn.request("POST", f"/api/v1/projects/{project_id}/preference-sets/", body=b"{}",
                     headers={**headers, "Content-Type": "application/json"})
        response = conn.getresponse()
        frozen = json.loads(response.read())
        freeze_s = time.perf_counter() - started
        assert response.status == 201, frozen
        freeze_peak = _peak_rss_mb(worker)
        print(f"froze v{frozen['version']}: {frozen['pairs']:,} pairs in {freeze_s:.1f} s, "
              f"worker peak {freeze_peak:.0f} MB", file=sys.stderr)

        _reset_peak(worker)
        baseline = _peak_rss_mb(worker)
        load = os.getloadavg()[0]
        cpu_before = _cpu_s(worker)
        pg_before = _backend_cpu(db_url)
        started = time.perf_counter()
        conn.request("GET", f"/api/v1/preference-sets/{frozen['id']}/export/?format=trl", headers=headers)
        response = conn.getresponse()
        assert response.status == 200, response.read()[:500]
        rows = 0
        size = 0
        first = last = b""
        while chunk := response.read(1024 * 1024):
            if not first:
                first = chunk.split(b"\n", 1)[0]
            rows += chunk.count(b"\n")
            size += len(chunk)
            last = chunk
        export_s = time.perf_counter() - started
        worker_cpu = _cpu_s(worker) - cpu_before
        pg_cpu = sum(cpu - pg_before.get(pid, 0.0) for pid, cpu in _backend_cpu(db_url).items())
        peak = _peak_rss_mb(worker)
        json.loads(first)
        json.loads(last.rstrip(b"\n").rsplit(b"\n", 1)[-1])
        assert rows == frozen["pairs"] == args.pairs, (rows, frozen["pairs"])
        assert response.getheader("X-Prefloop-Sha256") == frozen["sha256"]
        rows_per_s = rows / export_s
        print(f"exported {rows:,} trl rows ({size / 1e6:.0f} MB) in {export_s:.1f} s: "
              f"{rows_per_s:,.0f} rows/s (target {TARGET_ROWS_PER_S:,}); worker peak {peak:.0f} MB "
              f"(at start {baseline:.0f} MB; target < {TARGET_PEAK_MB})", file=sys.stderr)
        # A backend that ended before the second reading (its connection closed) is not counted.
        pg_text = f"{pg_cpu:.1f} s ({rows / pg_cpu:,.0f} rows per CPU second)" if pg_cpu > 0 else "not measured"
        # CPU time counts in clock ticks (10 ms): a small export (--smoke) may read none.
        worker_text = f"{worker_cpu:.1f} s ({rows / worker_cpu:,.0f} rows per CPU second)" if worker_cpu > 0 else "not measured"
        print(f"CPU: the worker {worker_text}, "
              f"its PostgreSQL backend {pg_text}; "
              f"load average at the start {load:.1f} on {os.cpu_count()} cores", file=sys.stderr)
        print(json.dumps({
            "rows_per_s": round(rows_per_s),
            "peak_rss_mb": round(peak, 1),
            "rows": rows,
            "seconds": round(export_s, 2),
            "megabytes": round(size / 1e6, 1),
            "freeze_seconds": round(freeze_s, 2),
            "freeze_peak_rss_mb": round(freeze_peak, 1),
            "rss_at_export_start_mb": round(baseline, 1),
            "worker_cpu_s": round(worker_cpu, 2),
            "rows_per_worker_cpu_s": round(rows / worker_cpu) if worker_cpu > 0 else None,
            "postgres_cpu_s": round(pg_cpu, 2) if pg_cpu > 0 else None,
            "rows_per_postgres_cpu_s": round(rows / pg_cpu) if pg_cpu > 0 else None,
            "load_average": round(load, 1),
            "target_rows_per_s": TARGET_ROWS_PER_S,
            "target_peak_rss_mb": TARGET_PEAK_MB,
        }))
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        from django.db import connections

        connections.close_all()
        _drop_database(args.admin_url, args.database)


if __name__ == "__main__":
    main()
