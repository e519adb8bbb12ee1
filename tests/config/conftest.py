"""A private redis-server for the ops and metrics tests (the worker tests' fixture)."""

from tests.workers.conftest import redis_server  # noqa: F401
