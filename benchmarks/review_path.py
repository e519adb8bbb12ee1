"""Review path under load: N reviewer clients doing next -> judgment over HTTP.

Production-style: gunicorn serving Prefloop against PostgreSQL (a scratch database this script
creates and drops). Each client is a thread with its own connection and its own API token.
gunicorn runs 2 worker processes (one per core of the development machine) x 4 threads, with
kept-alive connections (--keep-alive 5) capped at 16 per process (--worker-connections): a
gthread worker keeps a connection on the process that accepted it, and without the cap 32
clients connecting at once land unevenly and the clients on the busier process wait longer.
A connection per request (--keep-alive 0) costs more here: gunicorn 27 (unlike 23)
closes each connection gracefully, waiting for the client's close, and this client's 32
Python threads are slow to close. Prints judgments/s and request latency (p50/p99, also per
request kind), then checks the database: every 201
the clients saw is one stored judgment (none lost), no reviewer judged a comparison twice, and
no comparison got more than k judgments.

    python benchmarks/review_path.py [--clients 32] [--seconds 20] [--workers 2] [--keep-alive 5]
    python benchmarks/review_path.py --smoke     # 4 clients for 2 s: does it still run?

Target on the 2-core development machine: >= 200 judgments/s with 32 clients, p99 < 150 ms,
zero errors, zero lost or duplicate judgments.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


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


def _seed(clients: int, comparisons: int, overlap: int) -> tuple[int, list[str]]:
    """Creates the project, reviewers with tokens, and comparisons; returns (project id, tokens)."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from prefs.hashing import messages_hash, pair_hash, sha256_text
    from prefs.models import Candidate, Comparison, Project, Prompt

    project = Project.objects.create(name="bench", overlap=overlap, guidelines="Pick the better one.")
    User = get_user_model()
    users = [User.objects.create_user(f"bench{i}", password="bench-password") for i in range(clients)]
    project.reviewers.add(*users)
    tokens = [Token.objects.create(user=u).key for u in users]
    prompts = Prompt.objects.bulk_create(
        Prompt(
            project=project,
            messages=[{"role": "user", "content": f"Question {i}: how do I do thing {i}?"}],
            content_hash=messages_hash([{"role": "user", "content": f"Question {i}: how do I do thing {i}?"}]),
        )
        for i in range(comparisons)
    )
    texts = [(f"Answer one to {i}. " * 20, f"Answer two to {i}. " * 15) for i in range(comparisons)]
    cands = Candidate.objects.bulk_create(
        Candidate(prompt=p, text=t, source=src, text_hash=sha256_text(t))
        for p, pair in zip(prompts, texts, strict=True)
        for t, src in zip(pair, ("model-a", "model-b"), strict=True)
    )
    Comparison.objects.bulk_create(
        Comparison(
            project=project,
            prompt=p,
            candidate_a=cands[2 * i],
            candidate_b=cands[2 * i + 1],
            required_judgments=overlap,
            pair_hash=pair_hash(p.content_hash, *texts[i]),
        )
        for i, p in enumerate(prompts)
    )
    return project.pk, tokens


class Client(threading.Thread):
    def __init__(self, port: int, token: str, project_id: int, start_at: float, warm_until: float, stop_at: float):
        super().__init__(daemon=True)
        self.port, self.token, self.project_id = port, token, project_id
        self.start_at, self.warm_until, self.stop_at = start_at, warm_until, stop_at
        self.latencies_ms: dict[str, list[float]] = {"next": [], "judgment": []}
        self.judgments = 0
        self.judgment_ids: list[int] = []
        self.errors: list[str] = []

    def _request(self, conn, kind: str, method: str, path: str, body: bytes | None = None):
        headers = {"Authorization": f"Token {self.token}", "Connection": "keep-alive"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        began = time.perf_counter()
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        elapsed = (time.perf_counter() - began) * 1000
        if began >= self.warm_until:
            self.latencies_ms[kind].append(elapsed)
        return response.status, data

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while time.perf_counter() < self.start_at:
            time.sleep(0.001)
        choices = ("left", "right", "tie", "left", "right")
        n = 0
        while time.perf_counter() < self.stop_at:
            try:
                status, data = self._request(conn, "next", "GET", f"/api/v1/projects/{self.project_id}/next/")
                if status == 204:
                    return
                if status != 200:
                    self.errors.append(f"next {status} {data[:200]!r}")
                    continue
                assignment = json.loads(data)["assignment"]
                body = json.dumps({"choice": choices[n % 5], "strength": 1 + n % 3}).encode()
                counted = time.perf_counter() >= self.warm_until
                status, data = self._request(conn, "judgment", "POST", f"/api/v1/assignments/{assignment}/judgment/", body)
                n += 1
                if status != 201:
                    self.errors.append(f"judgment {status} {data[:200]!r}")
                    continue
                self.judgment_ids.append(json.loads(data)["id"])
                if counted and time.perf_counter() <= self.stop_at:
                    self.judgments += 1
            except (OSError, http.client.HTTPException) as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)


def _wait_until_answering(port: int, timeout_s: float = 120.0) -> None:
    """Waits for an HTTP answer, not just an open port: gunicorn listens before its workers
    have loaded the application."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            conn.close()
            return
        except (OSError, http.client.HTTPException):
            time.sleep(0.2)
    raise SystemExit(f"gunicorn on port {port} did not answer within {timeout_s:.0f} s")


def _p99(sorted_ms: list[float]) -> float | None:
    return round(sorted_ms[int(0.99 * (len(sorted_ms) - 1))], 1) if sorted_ms else None


def latency_figures(clients: list[Client]) -> dict:
    """p50/p99 over every measured request and per request kind, and the request count.

    Each client keeps its latencies per kind (`Client.latencies_ms`); soak.py reports the same
    figures from the same clients, so both read them here."""
    by_kind = {kind: sorted(x for c in clients for x in c.latencies_ms[kind]) for kind in ("next", "judgment")}
    every = sorted(by_kind["next"] + by_kind["judgment"])
    figures = {"p50_ms": round(statistics.median(every), 1) if every else None, "p99_ms": _p99(every)}
    for kind, values in by_kind.items():
        figures[f"{kind}_p50_ms"] = round(statistics.median(values), 1) if values else None
        figures[f"{kind}_p99_ms"] = _p99(values)
    figures["requests"] = len(every)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured time, after warm-up")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--keep-alive", type=int, default=5, help="gunicorn keep-alive seconds (0: a connection per request)")
    parser.add_argument("--worker-connections", type=int, default=None,
                        help="connections a gunicorn worker takes at once (default: clients / workers, "
                             "rounded up, so kept-alive connections spread evenly; 0: gunicorn's 1000)")
    parser.add_argument("--worker-class", default="gthread", help="gunicorn worker class (gthread, sync)")
    parser.add_argument("--overlap", type=int, default=3)
    parser.add_argument("--comparisons", type=int, default=8000)
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--database", default="prefloop_bench_review")
    parser.add_argument("--smoke", action="store_true", help="a few seconds at tiny sizes: checks that the script runs (the test suite does)")
    args = parser.parse_args()
    if args.smoke:
        # Options given on the command line still win. The database is this run's own, so a smoke
        # run beside a measuring run never drops the measuring run's database.
        parser.set_defaults(clients=4, seconds=2.0, warmup=0.5, workers=1, threads=2, comparisons=200,
                            database=f"prefloop_smoke_review_{os.getpid()}")
        args = parser.parse_args()

    if args.worker_connections is None:
        args.worker_connections = -(-args.clients // args.workers)
    db_url = args.admin_url.rsplit("/", 1)[0] + "/" + args.database
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": db_url,
        "DEBUG": "False",
        "API_THROTTLE_USER": "1000000/min",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("REDIS_URL", None)
    os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "DEBUG", "API_THROTTLE_USER", "LOG_LEVEL")})
    os.environ.pop("REDIS_URL", None)

    print(f"creating database {args.database} ...", file=sys.stderr)
    _recreate_database(args.admin_url, args.database)
    server = None
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        project_id, tokens = _seed(args.clients, args.comparisons, args.overlap)
        port = _free_port()
        server = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}",
                "--workers", str(args.workers), "--worker-class", args.worker_class, "--threads", str(args.threads),
                "--keep-alive", str(args.keep_alive), "--log-level", "warning",
                *(["--worker-connections", str(args.worker_connections)] if args.worker_connections else []),
            ],
            cwd=ROOT, env=env, start_new_session=True,
        )
        _wait_until_answering(port)
        print(f"gunicorn up on {port}: {args.workers} workers x {args.threads} threads; "
              f"{args.clients} clients for {args.seconds:.0f} s", file=sys.stderr)

        start = time.perf_counter() + 0.5
        warm_until = start + args.warmup
        stop = warm_until + args.seconds
        clients = [Client(port, tokens[i], project_id, start, warm_until, stop) for i in range(args.clients)]
        for c in clients:
            c.start()
        for c in clients:
            c.join()
        finished = time.perf_counter()

        from django.db.models import Count

        from prefs.models import Comparison, Judgment

        seen_ids = [i for c in clients for i in c.judgment_ids]
        stored = set(Judgment.objects.filter(pk__in=seen_ids).values_list("pk", flat=True))
        lost = len(set(seen_ids) - stored)
        total_stored = Judgment.objects.count()
        duplicates = total_stored - len(set(Judgment.objects.values_list("comparison_id", "reviewer_id")))
        over_k = Comparison.objects.annotate(n=Count("judgments")).filter(n__gt=args.overlap).count()
        extra_rows = total_stored - len(set(seen_ids))  # stored but never acknowledged

        judgments = sum(c.judgments for c in clients)
        measured = min(args.seconds, finished - warm_until)
        errors = [e for c in clients for e in c.errors]
        for e in errors[:5]:
            print("error:", e, file=sys.stderr)
        result = {
            "judgments_per_s": round(judgments / measured, 1),
            **latency_figures(clients),
            "errors": len(errors),
            "lost": lost,
            "duplicates": duplicates + max(0, extra_rows),
            "over_k": over_k,
            "clients": args.clients,
            "seconds": round(measured, 1),
            "workers": args.workers,
            "threads": args.threads,
            "keep_alive": args.keep_alive,
            "worker_connections": args.worker_connections or 1000,
        }
        print(f"{result['judgments_per_s']} judgments/s, p50 {result['p50_ms']} ms, "
              f"p99 {result['p99_ms']} ms (next {result['next_p99_ms']}, judgment {result['judgment_p99_ms']}), errors {result['errors']}, lost {lost}, "
              f"duplicates {result['duplicates']}", file=sys.stderr)
        print(json.dumps(result))
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        from django.db import connections

        connections.close_all()
        _drop_database(args.admin_url, args.database)


if __name__ == "__main__":
    main()
