"""Killing a PostgreSQL backend from the side, as a restart or failover would, for fault tests."""

from __future__ import annotations

import time

from django.db import connections


def terminate_backend(pid: int) -> None:
    """Terminates backend `pid` from a second connection and waits until it is gone.

    The second connection is marked `_is_killer`, so execute wrappers watching for statements
    can let its own statements through."""
    other = connections.create_connection("default")
    other._is_killer = True
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            # Until the backend is gone, so the victim's next statement meets a dead line.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
                if cursor.fetchone()[0] == 0:
                    break
                time.sleep(0.02)
    finally:
        other.close()
