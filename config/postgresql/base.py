"""Django's PostgreSQL backend, with a cheaper health check.

With CONN_HEALTH_CHECKS on, Django checks a reused connection before its first query in each
request by sending `SELECT 1`: a round trip on every request, a noticeable share of a short
request's work. A connection the server dropped (a restart, a failover, pg_terminate_backend)
tells its client so: the server sends an error and closes, which leaves the socket readable.
An idle connection whose socket has nothing to read has heard nothing since its last answer,
so it is taken as healthy without asking; a readable socket, or a connection not idle, gets
Django's own `SELECT 1`. A peer that vanished without a word (a cable pulled) passes either
check until TCP gives up, so nothing is lost there.
"""

from __future__ import annotations

import select

import psycopg
from django.db.backends.postgresql import base
from psycopg import pq


def socket_is_quiet(fd: int) -> bool:
    """True when nothing (data, end of stream, error) waits on the socket `fd`."""
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    return not poller.poll(0)


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self):
        connection = self.connection
        if connection is None or connection.closed:
            return False
        try:
            quiet = (
                connection.info.transaction_status == pq.TransactionStatus.IDLE
                and socket_is_quiet(connection.fileno())
            )
        except (OSError, ValueError, psycopg.Error):
            # A broken connection must not raise here; the full check below decides.
            quiet = False
        return True if quiet else super().is_usable()
