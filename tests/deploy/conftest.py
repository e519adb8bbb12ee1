"""Real workers and a tiny model for the scale-out tests: the worker tests' fixtures, reused."""

from tests.tuning.fixtures import media, other_tiny_source, tiny_source, tuning_project  # noqa: F401
from tests.workers.conftest import redis_server, start_worker, worker_env  # noqa: F401
