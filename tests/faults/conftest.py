"""Fixtures of the fault tests: real workers (tests/workers) and the tuning world."""

from __future__ import annotations

from tests.tuning.fixtures import media, other_tiny_source, tiny_source, tuning_project  # noqa: F401
from tests.workers.conftest import redis_server, start_worker, worker_env  # noqa: F401
