"""config.postgresql: the health check asks the server only when the socket has news."""

from __future__ import annotations

import socket

import pytest
from django.db import connection, connections
from django.db.backends.postgresql import base as django_base

from config.postgresql.base import socket_is_quiet
from tests.backends import terminate_backend


def test_a_socket_with_nothing_to_read_is_quiet_and_one_with_data_or_a_close_is_not():
    ours, theirs = socket.socketpair()
    try:
        assert socket_is_quiet(ours.fileno())
        theirs.sendall(b"E")
        assert not socket_is_quiet(ours.fileno())
        ours.recv(1)
        assert socket_is_quiet(ours.fileno())
        theirs.close()
        assert not socket_is_quiet(ours.fileno())
    finally:
        ours.close()


@pytest.fixture
def postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (CI runs this on PostgreSQL)")
    connections["default"].ensure_connection()
    return connections["default"]


@pytest.fixture
def select_1_calls(monkeypatch):
    """Counts the times Django's own check (SELECT 1) runs."""
    calls = []
    real = django_base.DatabaseWrapper.is_usable

    def counted(self):
        calls.append(self.alias)
        return real(self)

    monkeypatch.setattr(django_base.DatabaseWrapper, "is_usable", counted)
    return calls


@pytest.mark.django_db(transaction=True)
def test_the_settings_use_this_backend_on_postgresql(postgresql):
    assert type(postgresql).__module__ == "config.postgresql.base"


@pytest.mark.django_db(transaction=True)
def test_an_idle_connection_that_heard_nothing_is_usable_without_a_query(postgresql, select_1_calls):
    assert postgresql.is_usable()
    assert select_1_calls == []


@pytest.mark.django_db
def test_a_connection_inside_a_transaction_gets_the_full_check(postgresql, select_1_calls):
    with postgresql.cursor() as cursor:
        cursor.execute("SELECT 1")  # the test's transaction begins with its first statement
    assert postgresql.is_usable()
    assert select_1_calls == ["default"]


@pytest.mark.django_db(transaction=True)
def test_a_connection_whose_backend_was_terminated_is_unusable(postgresql, select_1_calls):
    terminate_backend(postgresql.connection.info.backend_pid)
    assert not postgresql.is_usable()
    assert select_1_calls == ["default"]
    postgresql.close()
