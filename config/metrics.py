"""Prometheus metrics at /metrics: requests, queue depth, jobs by state, judgments per minute.

Request counts and latencies are recorded by MetricsMiddleware as requests pass. Everything
else is read when Prometheus scrapes, from the database and the broker, so the numbers are the
same whichever web process answers and nothing has to be kept in step.

Under gunicorn each worker process counts its own requests. With PROMETHEUS_MULTIPROC_DIR set
(docker-compose.yml does; config/gunicorn.py clears it at start) prometheus_client keeps the
counters in files there and a scrape adds up every process's; without it (runserver, tests)
they live in the process.

Who may read it: with METRICS_TOKEN set, whoever sends `Authorization: Bearer <token>`; with
it unset, only clients on this machine (127.0.0.0/8, ::1). Behind a reverse proxy on the same
host every request looks local, so production sets METRICS_TOKEN (docs/deploy.md).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import time
from datetime import timedelta

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger(__name__)

REQUESTS = Counter(
    "prefloop_http_requests_total",
    "HTTP requests answered, by view, method and status code.",
    ["view", "method", "status"],
)
LATENCY = Histogram(
    "prefloop_http_request_duration_seconds",
    "Time to answer an HTTP request, in seconds, by view.",
    ["view", "method"],
    # Review clicks should answer in tens of milliseconds; imports and exports take seconds.
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

# Judgments per minute are averaged over this window (a single minute is too noisy to alert on).
JUDGMENT_WINDOW = timedelta(minutes=5)


class MetricsMiddleware:
    """Counts every request by the name of the view that answered it (not by path: paths hold
    ids, and one series per id would swamp Prometheus)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = match.view_name if match else "unmatched"
        REQUESTS.labels(view, request.method, str(response.status_code)).inc()
        LATENCY.labels(view, request.method).observe(time.perf_counter() - started)
        return response


# -- what is read at scrape time -------------------------------------------------------------------


def queue_names() -> list[str]:
    """The Celery queues to watch: the two fixed ones and every queue jobs are routed to."""
    names = {"default", "gpu", *settings.PREFLOOP_JOB_QUEUES.values()}
    return sorted(names)


def queue_depths(names: list[str]) -> dict[str, int] | None:
    """Messages waiting in each queue; None when the broker cannot be read.

    Redis keeps a queue as a list named after it, plus one list per priority step (Kombu's
    `<name>\\x06\\x16<priority>`); the embedded broker keeps one file per message named
    `<time>_<uuid>.<queue>.msg`. Messages a worker has taken but not finished are not counted.
    """
    url = settings.CELERY_BROKER_URL
    if url.startswith(("redis://", "rediss://")):
        import redis

        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        try:
            pipe = client.pipeline(transaction=False)
            for name in names:
                for key in _redis_keys(name):
                    pipe.llen(key)
            counts = pipe.execute()
        except redis.RedisError as exc:
            logger.warning("metrics: broker unreadable (%s)", exc)
            return None
        finally:
            client.close()
        steps = len(_redis_keys(""))
        return {name: sum(counts[i * steps : (i + 1) * steps]) for i, name in enumerate(names)}
    if url.startswith("filesystem://"):
        folder = settings.CELERY_BROKER_DIR / "queue"
        try:
            files = os.listdir(folder)
        except FileNotFoundError:
            files = []
        return {name: sum(1 for f in files if f.partition(".")[2] == f"{name}.msg") for name in names}
    return None


def _redis_keys(name: str) -> list[str]:
    from kombu.transport.redis import PRIORITY_STEPS, Channel

    return [name] + [f"{name}{Channel.sep}{step}" for step in PRIORITY_STEPS if step]


class StateCollector:
    """Gauges read from the database and the broker when Prometheus scrapes."""

    def collect(self):
        from django.db.models import Count, Min
        from django.utils import timezone

        from prefs.models import Judgment
        from tuning.models import Job

        names = queue_names()
        depths = queue_depths(names)
        up = GaugeMetricFamily("prefloop_broker_up", "1 when the broker answered this scrape, else 0.")
        up.add_metric([], 0 if depths is None else 1)
        yield up
        if depths is not None:
            depth = GaugeMetricFamily(
                "prefloop_queue_depth", "Messages waiting in a Celery queue (not yet taken by a worker).", labels=["queue"]
            )
            for name in names:
                depth.add_metric([name], depths[name])
            yield depth

        jobs = GaugeMetricFamily("prefloop_jobs", "Tuning jobs by state and kind.", labels=["state", "kind"])
        counts = {
            (row["state"], row["kind"]): row["n"]
            for row in Job.objects.order_by().values("state", "kind").annotate(n=Count("id"))
        }
        # Every combination, zeros included, so a series does not vanish when its count is 0.
        for state in Job.State.values:
            for kind in Job.Kind.values:
                jobs.add_metric([state, kind], counts.get((state, kind), 0))
        yield jobs

        now = timezone.now()
        oldest = Job.objects.filter(state=Job.State.QUEUED).aggregate(t=Min("created_at"))["t"]
        waiting = GaugeMetricFamily(
            "prefloop_job_oldest_queued_seconds",
            "Age of the oldest queued job in seconds (0 when none waits): jobs nobody takes.",
        )
        waiting.add_metric([], (now - oldest).total_seconds() if oldest else 0.0)
        yield waiting

        recent = Judgment.objects.filter(imported=False, created_at__gte=now - JUDGMENT_WINDOW).count()
        rate = GaugeMetricFamily(
            "prefloop_judgments_per_minute",
            f"Reviewer judgments per minute, averaged over the last {int(JUDGMENT_WINDOW.total_seconds() // 60)} minutes.",
        )
        rate.add_metric([], recent / (JUDGMENT_WINDOW.total_seconds() / 60))
        yield rate


def _request_registry():
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def metrics_text() -> bytes:
    state = CollectorRegistry(auto_describe=False)
    state.register(StateCollector())
    return generate_latest(_request_registry()) + generate_latest(state)


# -- the endpoint -------------------------------------------------------------------------------------


def _is_loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


def _refusal(request) -> HttpResponse | None:
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return None
        response = HttpResponse("metrics need Authorization: Bearer <METRICS_TOKEN>\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if _is_loopback(request.META.get("REMOTE_ADDR")):
        return None
    return HttpResponse(
        "metrics are served to this machine only; set METRICS_TOKEN to scrape from elsewhere\n",
        status=403,
        content_type="text/plain",
    )


@require_GET
@never_cache
def metrics(request):
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)
