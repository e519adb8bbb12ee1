"""Fuzzing the API from its own OpenAPI schema (schemathesis), as an admin and as a reviewer.

Every operation in /api/schema/ gets a bounded number of generated requests (valid by the
schema: bodies, query parameters, media types), with the path ids pointing at real objects so
the requests reach the code behind the permission checks. Each answer must not be a server
error, and must match the schema: a documented status's body validates against its schema and
its content type is the declared one.

Failures are collected per operation (with the request that caused them) and reported
together, so one broken endpoint does not hide another.
"""

from __future__ import annotations

import os
import traceback
from contextlib import contextmanager

import pytest
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
)

# Generated requests per operation, role and mode; PREFLOOP_FUZZ_EXAMPLES raises it for a long run.
EXAMPLES = int(os.environ.get("PREFLOOP_FUZZ_EXAMPLES", "10"))
# Valid requests (by the schema) must get answers the schema describes; invalid ones (wrong
# types, missing fields, out-of-range values) must at least never be a server error.
MODES = {
    GenerationMode.POSITIVE: [not_a_server_error, response_schema_conformance, content_type_conformance],
    GenerationMode.NEGATIVE: [not_a_server_error],
}


def _path_ids(world) -> dict:
    return {
        "project_id": world.project.pk,
        "assignment_id": world.assignment.pk,
        "job_id": world.job.pk,
        "adapter_id": world.adapter.pk,
        "evaluation_id": world.evaluation.pk,
        "set_id": world.preference_set.pk,
    }


def _body(case):
    return None if type(case.body).__name__ == "NotSet" else case.body


def _fuzz_operation(operation, strategy, checks) -> list[str]:
    seen: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        # No shrinking: the first failing request is reported as it was sent.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case):
        response = case.call()
        try:
            case.validate_response(response, checks=checks)
        except (Exception, BaseExceptionGroup) as exc:  # every kind of check failure, reported below
            failures = getattr(exc, "exceptions", (exc,))
            what = "; ".join(f"{getattr(f, 'title', type(f).__name__)}: {getattr(f, 'message', f)}" for f in failures)
            seen.append(
                f"{operation.label}: {what}\n"
                f"  request: {case.method} {case.formatted_path} query={case.query} body={_body(case)!r:.300}\n"
                f"  answer: {response.status_code} {response.text[:300]!r}"
            )

    try:
        run()
    except Unsatisfiable:
        # Negative mode on an operation whose every input is fixed (ids we chose, no query,
        # no body): there is nothing invalid to send.
        pass
    except (Exception, BaseExceptionGroup):
        seen.append(f"{operation.label}: {traceback.format_exc(limit=3)}")
    return seen


@contextmanager
def _connection_kept():
    """The WSGI handler closes the database connection after each request; inside a test
    that would close the test's transaction. Django's own test client does the same."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _fuzz(world, user) -> list[str]:
    with _connection_kept():
        return _fuzz_all(world, user)


def _fuzz_all(world, user) -> list[str]:
    token = Token.objects.get_or_create(user=user)[0].key
    schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
    ids = _path_ids(world)
    problems: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        # DELETE /auth/token/ revokes the caller's token; every other operation needs it back.
        Token.objects.get_or_create(key=token, defaults={"user": user})
        wanted = {p.name for p in operation.path_parameters}
        for mode, checks in MODES.items():
            strategy = operation.as_strategy(
                mode,
                path_parameters={name: ids[name] for name in wanted if name in ids},
                headers={"Authorization": f"Token {token}"},
            )
            # The first three problems of each operation and mode say enough.
            problems.extend(_fuzz_operation(operation, strategy, checks)[:3])
    assert operations >= 20, f"the schema lists only {operations} operations"
    return problems


@pytest.mark.django_db
def test_the_api_answers_admins_without_server_errors_and_as_its_schema_says(world):
    problems = _fuzz(world, world.admin_user)
    assert problems == [], "\n\n".join(problems)


@pytest.mark.django_db
def test_the_api_answers_reviewers_without_server_errors_and_as_its_schema_says(world):
    problems = _fuzz(world, world.reviewer)
    assert problems == [], "\n\n".join(problems)
