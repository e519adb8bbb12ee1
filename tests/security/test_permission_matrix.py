"""Who may reach what: every URL × anonymous, reviewer, outsider, removed member, admin → the
expected status.

The cases are generated from the URL configuration (`get_resolver()`), so a new URL without an
entry in EXPECTED fails here until someone decides, in writing, who may reach it. Each case
builds a fresh world (one project with a reviewer, another project with its own reviewer — the
outsider —, an assignment, a preference set, a job, an adapter, an evaluation) and asks as one
role. The removed member is the reviewer, taken off the project while holding the assignment;
unless a case says otherwise they get what the outsider gets.

Denials differ by family, each on purpose:
- reviewer pages: anonymous → 302 to the login page; a project the user is not in → 404, as for
  a project that does not exist, so ids reveal nothing;
- admin pages of stats: 404 for non-admins (same reason); tuning pages: 403;
- API: anonymous → 401 (token auth answers with WWW-Authenticate), non-admins → 403 on admin
  endpoints, 404 for a foreign project or assignment;
- Django's admin site: staff only, everyone else is sent to its login page.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

# Who asks, in the order each case asks (see _cases).
ROLES = ("anonymous", "outsider", "removed", "reviewer", "admin")


@dataclass(frozen=True)
class Expect:
    """Statuses per role for one method; `body` is sent as form data (pages) or JSON (API)."""

    method: str
    anonymous: int
    reviewer: int
    outsider: int
    admin: int
    body: dict = field(default_factory=dict)
    query: str = ""
    # None: as the outsider.
    removed: int | None = None

    def status(self, role: str) -> int:
        if role == "removed" and self.removed is None:
            return self.outsider
        return getattr(self, role)


def page(method: str, anonymous: int, reviewer: int, outsider: int, admin: int, **extra) -> Expect:
    return Expect(method, anonymous, reviewer, outsider, admin, **extra)


# Shorthands for the usual families (anonymous, reviewer, outsider, admin).
REVIEWER_PAGE = (302, 200, 404, 200)
STATS_PAGE = (302, 404, 404, 200)
TUNING_PAGE = (302, 403, 403, 200)
TUNING_POST = (302, 403, 403, 302)
ADMIN_API = (401, 403, 403, 200)
STAFF_SITE = (302, 302, 302, 200)
PUBLIC = (200, 200, 200, 200)

EXPECTED: dict[str, tuple[Expect, ...]] = {
    # --- pages everyone meets ---
    "home": (page("get", 302, 200, 200, 200),),
    "login": (
        page("get", 200, 302, 302, 302),
        # A wrong password re-shows the form; someone already logged in is sent on.
        page("post", 200, 302, 302, 302, body={"username": "nobody", "password": "wrong"}),
    ),
    # Logging out is POST only (a GET cannot log someone out from a link or an image).
    "logout": (page("get", 405, 405, 405, 405), page("post", 302, 302, 302, 302)),
    # Everyone's own page; an empty password form re-renders. Revoking a token is POST only.
    "prefs-account": (page("get", 302, 200, 200, 200), page("post", 302, 200, 200, 200)),
    "prefs-account-token-revoke": (page("get", 302, 405, 405, 405), page("post", 302, 302, 302, 302)),
    "healthz": (page("get", *PUBLIC), page("post", 405, 405, 405, 405)),
    # Metrics: only this machine or a bearer token; every matrix request comes from elsewhere.
    "metrics": (page("get", 403, 403, 403, 403),),
    # --- the review flow ---
    "prefs-review": (page("get", *REVIEWER_PAGE), page("post", 405, 405, 405, 405)),
    # Without htmx a judgment or skip answers with a redirect back to the review page; an admin
    # posting on someone else's assignment gets that redirect with an error, nothing stored.
    "prefs-review-judge": (
        page("get", 405, 405, 405, 405),
        page("post", 302, 302, 404, 302, body={"choice": "left", "strength": "2"}),
    ),
    "prefs-review-skip": (page("get", 405, 405, 405, 405), page("post", 302, 302, 404, 302)),
    # --- admin stats pages ---
    "prefs-stats-dashboard": (page("get", *STATS_PAGE),),
    "prefs-stats-reviewers": (page("get", *STATS_PAGE),),
    "prefs-stats-leaderboard": (page("get", *STATS_PAGE),),
    "prefs-stats-gold": (page("get", *STATS_PAGE), page("post", 302, 404, 404, 302, body={"comparison": "x"})),
    # --- admin data pages: import, preference sets ---
    # Creating a project and changing its settings: admins only; an invalid form re-renders.
    "prefs-project-new": (page("get", *TUNING_PAGE), page("post", 302, 403, 403, 200, body={"name": ""})),
    "prefs-project-settings": (
        page("get", *TUNING_PAGE),
        page("post", 302, 403, 403, 200, body={"name": ""}),
    ),
    "prefs-import": (page("get", *STATS_PAGE), page("post", 302, 404, 404, 400)),
    # An upload that is gone sends the admin back to the upload form.
    "prefs-import-confirm": (
        page("get", 302, 405, 405, 405),
        page("post", 302, 404, 404, 302, body={"token": "0" * 32}),
    ),
    "prefs-sets": (page("get", *STATS_PAGE), page("post", 302, 404, 404, 302, body={"rule": "majority"})),
    "prefs-set": (page("get", *STATS_PAGE),),
    # --- tuning pages ---
    "tuning-jobs": (page("get", *TUNING_PAGE),),
    "tuning-job-new": (page("get", *TUNING_PAGE), page("post", 302, 403, 403, 400, body={"project": ""})),
    "tuning-job": (page("get", *TUNING_PAGE),),
    "tuning-job-live": (page("get", *TUNING_PAGE),),
    "tuning-job-cancel": (page("get", 405, 405, 405, 405), page("post", *TUNING_POST)),
    "tuning-adapters": (page("get", *TUNING_PAGE),),
    "tuning-adapter": (page("get", *TUNING_PAGE),),
    "tuning-adapter-download": (page("get", *TUNING_PAGE),),
    "tuning-adapter-promote": (page("get", 405, 405, 405, 405), page("post", *TUNING_POST)),
    "tuning-project-rollback": (page("post", *TUNING_POST),),
    "tuning-evaluation": (page("get", *TUNING_PAGE),),
    "tuning-evaluation-live": (page("get", *TUNING_PAGE),),
    # The world's round 1 has not trained: starting another is refused (with a message), and
    # training it now freezes the project's judgments and queues DPO.
    "tuning-rounds": (page("get", *TUNING_PAGE),),
    "tuning-round-start": (page("get", 405, 405, 405, 405), page("post", *TUNING_POST)),
    "tuning-round-policy": (
        page("post", *TUNING_POST, body={"samples": "3", "pairing": "all", "target_judgments": "10", "max_prompts": "5"}),
    ),
    "tuning-round-train": (page("get", 405, 405, 405, 405), page("post", *TUNING_POST)),
    # --- API: schema and docs are public (they describe, they hold no data) ---
    "api-schema": (page("get", *PUBLIC),),
    # --- API: every signed-in client may revoke its own token ---
    "api-auth-token": (page("delete", 401, 204, 204, 204),),
    "api-docs": (page("get", *PUBLIC),),
    # --- API: the reviewer's loop. An admin may review any project, so gets a pair too; the
    # reviewer's assignment is theirs alone (404 for anyone else, as for a missing one).
    "api-project-next": (page("get", 401, 200, 404, 200),),
    # A reviewer taken off the project can no longer judge or skip the hold they still have.
    "api-assignment-judgment": (
        page("post", 401, 201, 404, 404, body={"choice": "left", "strength": 2}, removed=404),
    ),
    "api-assignment-skip": (page("post", 401, 204, 404, 404, removed=404),),
    # --- API: admin only ---
    "api-project-stats": (page("get", *ADMIN_API),),
    "api-project-leaderboard": (page("get", *ADMIN_API),),
    "api-jobs": (page("get", *ADMIN_API), page("post", 401, 403, 403, 400, body={"kind": "dpo"})),
    "api-job": (page("get", *ADMIN_API),),
    "api-job-events": (page("get", *ADMIN_API),),
    "api-job-cancel": (page("post", *ADMIN_API),),
    "api-adapters": (page("get", *ADMIN_API),),
    "api-adapter": (page("get", *ADMIN_API),),
    "api-adapter-promote": (page("post", 401, 403, 403, 200, body={"project": None}),),
    # The admin passes the gate; 409 because the project has no earlier adapter to go back to.
    "api-project-rollback": (page("post", 401, 403, 403, 409),),
    "api-evaluation": (page("get", *ADMIN_API),),
    "api-project-rounds": (page("get", *ADMIN_API), page("post", 401, 403, 403, 409)),
    "api-round-policy": (
        page("get", *ADMIN_API),
        page("put", 401, 403, 403, 200, body={"samples": 3, "pairing": "all", "target_judgments": 10, "max_prompts": 5}),
    ),
    "api-round-train": (page("post", 401, 403, 403, 201),),
    # --- API: projects (reviewers read their own), data in and out (admin only) ---
    "api-projects": (page("get", 401, 200, 200, 200), page("post", 401, 403, 403, 201, body={"name": "New"})),
    "api-project": (page("get", 401, 200, 404, 200),),
    # An empty body is refused (400) once the admin is through the gate.
    "api-project-import": (page("post", 401, 403, 403, 400),),
    "api-project-preference-sets": (page("get", *ADMIN_API), page("post", 401, 403, 403, 201)),
    "api-preference-set": (page("get", *ADMIN_API),),
    "api-preference-set-export": (page("get", *ADMIN_API, query="format=trl"),),
    # --- Django's admin site (staff only) ---
    "admin:index": (page("get", *STAFF_SITE),),
    "admin:app_list": (page("get", *STAFF_SITE),),
    "admin:login": (page("get", 200, 200, 200, 302),),
    "admin:logout": (page("post", 302, 302, 302, 302),),
    "admin:password_change": (page("get", *STAFF_SITE),),
    "admin:password_change_done": (page("get", *STAFF_SITE),),
    "admin:jsi18n": (page("get", *STAFF_SITE),),
    # Without app and field parameters the autocomplete refuses even an admin.
    "admin:autocomplete": (page("get", 302, 302, 302, 403),),
    # Our models have no public page (no get_absolute_url), so "view on site" finds nothing.
    "admin:view_on_site": (page("get", 302, 302, 302, 404),),
    "admin:auth_user_password_change": (page("get", *STAFF_SITE),),
}
# Every model registered in the admin site has the same five pages, plus a bare object URL that
# redirects to its change page (for anyone; the change page then asks for staff).
ADMIN_MODEL_PAGES = {
    "changelist": (page("get", *STAFF_SITE),),
    "add": (page("get", *STAFF_SITE),),
    "change": (page("get", *STAFF_SITE),),
    "history": (page("get", *STAFF_SITE),),
    "delete": (page("get", *STAFF_SITE),),
    "": (page("get", 302, 302, 302, 302),),
}
# The admin's catch-all sends non-staff to log in (so paths reveal nothing) and answers 404 to staff.
ADMIN_CATCH_ALL = (page("get", 302, 302, 302, 404),)


@dataclass(frozen=True)
class Route:
    key: str  # the URL name (namespaced), or "admin-model:<app>.<model>:<page>" for model pages
    route: str
    name: str | None
    kwargs: tuple[str, ...]
    callback: object


def _walk(resolver: URLResolver, prefix: str = "", namespace: str = ""):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = namespace
            if entry.namespace:
                inner = f"{namespace}:{entry.namespace}" if namespace else entry.namespace
            yield from _walk(entry, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
            yield prefix + str(entry.pattern), name, tuple(entry.pattern.regex.groupindex), entry.callback


def _admin_model_key(route: str, name: str | None) -> str | None:
    """Model pages of the admin site, keyed by page kind; None for other admin URLs."""
    from django.contrib import admin

    for model in admin.site._registry:
        base = f"admin/{model._meta.app_label}/{model._meta.model_name}/"
        if not route.startswith(base):
            continue
        label = f"{model._meta.app_label}.{model._meta.model_name}"
        if name is None:
            return f"admin-model:{label}:"
        prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}_"
        if name.startswith(prefix) and name[len(prefix):] in ADMIN_MODEL_PAGES:
            return f"admin-model:{label}:{name[len(prefix):]}"
    return None


def all_routes() -> list[Route]:
    routes = []
    for route, name, kwargs, callback in _walk(get_resolver()):
        key = _admin_model_key(route, name) or name or f"unnamed:{route}"
        if key == "unnamed:admin/(?P<url>.*)$":
            key = "admin:catch_all"
        routes.append(Route(key=key, route=route, name=name, kwargs=kwargs, callback=callback))
    return routes


def expectations(key: str) -> tuple[Expect, ...] | None:
    if key.startswith("admin-model:"):
        return ADMIN_MODEL_PAGES[key.rsplit(":", 1)[1]]
    if key == "admin:catch_all":
        return ADMIN_CATCH_ALL
    return EXPECTED.get(key)


ROUTES = all_routes()


def _cases():
    """One case per URL and method, asking as each role in turn on one fresh world. Writes go
    last to the roles that may make them (outsider, then reviewer, then admin), so a refused
    request that changed something shows up as a wrong status for a later role too."""
    for route in ROUTES:
        for index, expect in enumerate(expectations(route.key) or (Expect("get", 0, 0, 0, 0),)):
            yield pytest.param(route, index, id=f"{route.key}-{expect.method}")


CASES = list(_cases())


def test_every_url_has_an_entry_in_the_table():
    missing = [f"{r.key} ({r.route})" for r in ROUTES if expectations(r.key) is None]
    assert missing == [], (
        "These URLs have no expected statuses; add them to EXPECTED in "
        f"tests/security/test_permission_matrix.py: {missing}"
    )


def test_the_table_names_only_urls_that_exist():
    keys = {r.key for r in ROUTES}
    assert sorted(set(EXPECTED) - keys) == []


def test_every_method_an_api_view_answers_has_an_entry():
    """A DRF view that gains a method (say DELETE) needs a decision for it, too."""
    unlisted = []
    for route in ROUTES:
        cls = getattr(route.callback, "cls", None)
        expected = expectations(route.key)
        if cls is None or expected is None or not route.route.startswith("api/v1/"):
            continue
        answered = {m for m in cls.http_method_names if hasattr(cls, m) and m not in ("options", "head")}
        listed = {e.method for e in expected}
        unlisted += [f"{method.upper()} {route.route}" for method in sorted(answered - listed)]
    assert unlisted == []


def _object_id(model, world) -> str:
    from django.contrib.auth.models import Group
    from rest_framework.authtoken.models import Token

    if model._meta.label == "auth.Group":
        return str(Group.objects.get_or_create(name="editors")[0].pk)
    if model._meta.label == "authtoken.TokenProxy":
        return str(Token.objects.get_or_create(user=world.reviewer)[0].user_id)
    obj = model._default_manager.order_by("pk").first()
    assert obj is not None, f"the world holds no {model._meta.label}; build one in tests/security/conftest.py"
    return str(obj.pk)


def _url(route: Route, world) -> str:
    from django.contrib import admin
    from django.contrib.contenttypes.models import ContentType

    if route.key == "admin:catch_all":
        return "/admin/no-such-page/"
    if route.key.startswith("admin-model:"):
        label = route.key.split(":")[1]
        model = next(m for m in admin.site._registry if f"{m._meta.app_label}.{m._meta.model_name}" == label)
        object_id = _object_id(model, world)
        if route.name is None:
            return f"/admin/{model._meta.app_label}/{model._meta.model_name}/{object_id}/"
        return reverse(route.name, kwargs={"object_id": object_id} if "object_id" in route.kwargs else {})
    values = {
        "project_id": world.project.pk,
        "assignment_id": world.assignment.pk,
        "job_id": world.job.pk,
        "adapter_id": world.adapter.pk,
        "evaluation_id": world.evaluation.pk,
        "round_id": world.round.pk,
        "set_id": world.preference_set.pk,
        "kind": "dpo",
        "app_label": "prefs",
        "id": world.reviewer.pk,
        "content_type_id": ContentType.objects.get_for_model(world.project).pk,
        "object_id": world.project.pk,
    }
    unknown = [name for name in route.kwargs if name not in values]
    assert unknown == [], f"no value for URL argument(s) {unknown} of {route.route}; add one in _url()"
    return reverse(route.name, kwargs={name: values[name] for name in route.kwargs})


def _client(role: str, world) -> APIClient:
    # Every request comes from another machine, as a real client's would.
    client = APIClient(REMOTE_ADDR="203.0.113.5")
    user = {
        "reviewer": world.reviewer,
        "removed": world.reviewer,
        "outsider": world.outsider,
        "admin": world.admin_user,
    }.get(role)
    if user is not None:
        client.force_login(user)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize(("route", "index"), CASES)
def test_status(route: Route, index: int, world):
    expected = expectations(route.key)
    if expected is None:
        pytest.fail(f"no entry for {route.key}; see test_every_url_has_an_entry_in_the_table")
    expect = expected[index]
    url = _url(route, world) + (f"?{expect.query}" if expect.query else "")
    wrong = []
    for role in ROLES:
        client = _client(role, world)
        if role == "removed":
            world.project.reviewers.remove(world.reviewer)
        try:
            if route.route.startswith("api/v1/"):
                response = getattr(client, expect.method)(url, expect.body or None, format="json")
            else:
                response = getattr(client, expect.method)(url, expect.body)
        finally:
            if role == "removed":
                world.project.reviewers.add(world.reviewer)
        if response.status_code != expect.status(role):
            wrong.append(f"{role}: {response.status_code}, expected {expect.status(role)}")
        elif response.status_code == 302 and role == "anonymous" and expect.method == "get" and not route.key.startswith(("admin", "login")):
            # Anonymous visitors of a protected page are sent to log in and come back afterwards.
            assert response["Location"].startswith("/login/?next="), response["Location"]
    assert wrong == [], f"{expect.method.upper()} {url}: " + "; ".join(wrong)
