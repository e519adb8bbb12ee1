"""The database connection dies in the middle of a judgment: the client is told, a retry
stores the judgment once.

A live server (its own threads, its own PostgreSQL connections) takes a reviewer's judgment
over HTTP. On PostgreSQL a judgment on an open hold is one statement (the hold closed, the
counters moved and the judgment inserted together, prefs/services/judging.py). A hook on the
server's connection terminates that backend from a second connection (`pg_terminate_backend`,
as a failover or an administrator would) just before that statement: the client gets 503 with
Retry-After, nothing of the judgment is in the database, and retrying the same request stores
it exactly once. Terminated just after it, the judgment is stored and acknowledged, once.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from django.db import connection
from django.db.backends.signals import connection_created
from rest_framework.authtoken.models import Token

from prefs.models import Assignment, Comparison, Judgment
from tests.backends import terminate_backend
from tests.factories import make_comparisons

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite has no server connection to drop (CI runs this on PostgreSQL)")


class BackendKiller:
    """An execute wrapper that terminates its own connection's backend once, at `moment`."""

    def __init__(self, *, before: str | None = None, after: str | None = None):
        self.before, self.after = before, after
        self.fired = False

    def attach(self, sender, connection, **kwargs):
        if getattr(connection, "_is_killer", False):
            return
        connection.execute_wrappers.append(self)

    def __call__(self, execute, sql, params, many, context):
        if not self.fired and self.before and sql.startswith(self.before):
            self._terminate(context["connection"])
        result = execute(sql, params, many, context)
        if not self.fired and self.after and sql.startswith(self.after):
            self._terminate(context["connection"])
        return result

    def _terminate(self, victim) -> None:
        self.fired = True
        terminate_backend(victim.connection.info.backend_pid)


def _call(method: str, url: str, token: str, body: dict | None = None) -> tuple[int, dict, dict]:
    request = urllib.request.Request(  # noqa: S310  (http to our own live server)
        url,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            return answer.status, dict(answer.headers), json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"{}")


JUDGMENT_STATEMENT = "WITH held AS"


def _held(live_server, reviewer, project) -> tuple[str, int, str]:
    """A reviewer's token, the assignment they hold, and its judgment URL."""
    make_comparisons(project, 2)
    token = Token.objects.create(user=reviewer).key
    assignment_id = _call("GET", f"{live_server.url}/api/v1/projects/{project.pk}/next/", token)[2]["assignment"]
    return token, assignment_id, f"{live_server.url}/api/v1/assignments/{assignment_id}/judgment/"


def _post_while_killing(killer: BackendKiller, url: str, token: str, verdict: dict) -> tuple[int, dict, dict]:
    connection_created.connect(killer.attach, weak=False)
    try:
        return _call("POST", url, token, verdict)
    finally:
        connection_created.disconnect(killer.attach)


def test_a_judgment_interrupted_by_a_lost_connection_is_refused_then_stored_once_on_retry(
    live_server, reviewer, project
):
    token, assignment_id, url = _held(live_server, reviewer, project)
    verdict = {"choice": "left", "strength": 3, "rationale": "clearer"}

    killer = BackendKiller(before=JUDGMENT_STATEMENT)
    status, headers, body = _post_while_killing(killer, url, token, verdict)
    assert killer.fired
    assert status == 503, body
    assert headers.get("Retry-After") == "2"
    assert "did not answer" in body["detail"]
    # Nothing half-written: no judgment, the hold still open, the counters untouched.
    assignment = Assignment.objects.get(pk=assignment_id)
    assert not Judgment.objects.exists()
    assert assignment.state == Assignment.State.OPEN
    comparison = Comparison.objects.get(pk=assignment.comparison_id)
    assert (comparison.judgment_count, comparison.open_holds) == (0, 1)

    status, _, body = _call("POST", url, token, verdict)
    assert status == 201, body
    status, _, again = _call("POST", url, token, verdict)
    assert status == 200 and again["id"] == body["id"]
    assert Judgment.objects.count() == 1
    comparison.refresh_from_db()
    assert (comparison.judgment_count, comparison.open_holds) == (1, 0)


def test_a_connection_lost_right_after_the_judgment_is_stored_still_acknowledges_it_once(
    live_server, reviewer, project
):
    token, assignment_id, url = _held(live_server, reviewer, project)
    verdict = {"choice": "right", "strength": 1, "rationale": ""}

    killer = BackendKiller(after=JUDGMENT_STATEMENT)
    status, _, body = _post_while_killing(killer, url, token, verdict)
    assert killer.fired
    assert status == 201, body
    # The server's next request reconnects; the retry finds the stored judgment.
    status, _, again = _call("POST", url, token, verdict)
    assert status == 200 and again["id"] == body["id"]
    assert Judgment.objects.count() == 1
    comparison = Comparison.objects.get(pk=Assignment.objects.get(pk=assignment_id).comparison_id)
    assert (comparison.judgment_count, comparison.open_holds) == (1, 0)
