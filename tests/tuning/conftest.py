"""Fixtures of the tuning tests (shared with the worker tests, see fixtures.py)."""

from tests.tuning.fixtures import media, other_tiny_source, tiny_source, tuning_project  # noqa: F401
