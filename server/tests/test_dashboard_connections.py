"""The dashboard's connections: its queries (on SQLite and PostgreSQL), the overview, the list
(filters, keyset pages, bad input), the connection page and its actions (through the same
services as the API, CSRF-checked, audited) and project isolation."""

from __future__ import annotations

import json
from html.parser import HTMLParser
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy import select
from starlette.requests import Request

from authpipe_server import projects
from authpipe_server.api.app import create_app
from authpipe_server.connections.secrets import TokenSet
from authpipe_server.connections.service import Owner, save_grant
from authpipe_server.connections.views import connection_view
from authpipe_server.dashboard import accounts, queries, sessions
from authpipe_server.dashboard.pages.connections import moment
from authpipe_server.dashboard.queries import ConnectionFilter
from authpipe_server.events.record import CREATED, REFRESH_FAILED, REFRESHED, REVOKED, record_event
from authpipe_server.ids import new_id
from authpipe_server.runtime import Runtime
from authpipe_server.emulators import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, serve_in_thread
from authpipe_server.emulators import spotify as spotify_emulator
from authpipe_server.emulators.oauth import Grant as EmulatedGrant
from authpipe_server.providers.apps import save_app
from authpipe_server.providers.base import Account, Described, Grant, Resource
from authpipe_server.sandbox.providers import overrides
from authpipe_server.store.models import AuditEntry, Connection, Event
from authpipe_server.store.types import utcnow


async def seed(runtime: Runtime, project_id: str, n: int, **fields: Any) -> list[str]:
    """`n` connections (oldest first, ids in creation order), tenants t0..t2, users u<i>,
    providers spotify/buffer alternating, unless `fields` says otherwise."""
    ids = []
    async with runtime.db.writing() as session:
        for i in range(n):
            values: dict[str, Any] = {
                "tenant_id": f"t{i % 3}",
                "user_id": f"u{i}",
                "provider": "spotify" if i % 2 == 0 else "buffer",
                "status": "active",
                "account_id": f"acct-{i}",
                "account_name": f"Listener {i}",
            } | fields
            if "user_id" in fields:
                values["user_id"] = f"{fields['user_id']}-{i}"
            connection = Connection(id=new_id("conn"), project_id=project_id, **values)
            session.add(connection)
            ids.append(connection.id)
    return ids


def ids_of(page: queries.Page[Any]) -> list[str]:
    return [item.id for item in page.items]


# -- queries ------------------------------------------------------------------------------------


async def test_pages_walk_forward_and_back_at_every_boundary(runtime: Runtime, project: tuple[str, str]) -> None:
    project_id, _ = project
    ids = await seed(runtime, project_id, 7)
    newest_first = ids[::-1]
    nothing = ConnectionFilter()
    async with runtime.db.sessions() as session:
        first = await queries.connection_page(session, project_id, nothing, limit=3)
        assert ids_of(first) == newest_first[:3]
        assert first.newer is None and first.older == newest_first[2]
        second = await queries.connection_page(session, project_id, nothing, after=first.older, limit=3)
        assert ids_of(second) == newest_first[3:6]
        assert second.newer == newest_first[3] and second.older == newest_first[5]
        last = await queries.connection_page(session, project_id, nothing, after=second.older, limit=3)
        assert ids_of(last) == newest_first[6:]
        assert last.newer == newest_first[6] and last.older is None
        # ...and back: `before` gives the page right before, in the same order.
        back = await queries.connection_page(session, project_id, nothing, before=last.newer, limit=3)
        assert ids_of(back) == ids_of(second) and back.newer == second.newer and back.older == second.older
        back_to_first = await queries.connection_page(session, project_id, nothing, before=back.newer, limit=3)
        assert ids_of(back_to_first) == newest_first[:3] and back_to_first.newer is None
        # An exact multiple of the page size: the last full page says there is no more.
        exact = await queries.connection_page(session, project_id, nothing, after=newest_first[0], limit=6)
        assert ids_of(exact) == newest_first[1:] and exact.older is None
        # Past either end: empty, no cursors.
        beyond = await queries.connection_page(session, project_id, nothing, after=newest_first[-1], limit=3)
        assert beyond.items == [] and beyond.newer is None and beyond.older is None
        whole = await queries.connection_page(session, project_id, nothing, limit=7)
        assert ids_of(whole) == newest_first and whole.older is None


async def test_filters_narrow_the_pages_and_the_count(runtime: Runtime, project: tuple[str, str]) -> None:
    project_id, _ = project
    ids = await seed(runtime, project_id, 9)
    revoked = await seed(runtime, project_id, 2, status="revoked", provider="facebook", tenant_id="acme", user_id="gone")
    async with runtime.db.sessions() as session:
        async def matching(limit: int = 50, **filters: str) -> list[str]:
            page = await queries.connection_page(session, project_id, ConnectionFilter(**filters), limit=limit)
            assert await queries.count_connections(session, project_id, ConnectionFilter(**filters)) == len(page.items)
            return ids_of(page)

        assert await matching(provider="spotify") == [ids[i] for i in (8, 6, 4, 2, 0)]
        assert await matching(status="revoked") == revoked[::-1]
        assert await matching(tenant_id="t1") == [ids[i] for i in (7, 4, 1)]
        assert await matching(user_id="u5") == [ids[5]]
        assert await matching(tenant_id="t1", provider="buffer") == [ids[7], ids[1]]
        assert await matching(provider="nobody") == []
        # Search: tenant, user and account ids exactly; the account name by prefix, any case.
        assert await matching(q="t2") == [ids[i] for i in (8, 5, 2)]
        assert await matching(q="u3") == [ids[3]]
        assert await matching(q="acct-4") == [ids[4]]
        assert await matching(q="listener 7") == [ids[7]]
        assert await matching(q="LISTENER") == [*revoked[::-1], *ids[::-1]]
        assert await matching(q="istener") == []  # a prefix, never a leading wildcard
        assert await matching(q="acct-") == []  # account ids match exactly
        assert await matching(q="%") == [] and await matching(q="_") == []  # LIKE's wildcards are literal
        # A connection id prefix, in any case.
        assert await matching(q=ids[3]) == [ids[3]]
        assert await matching(q=ids[3].lower()) == [ids[3]]
        assert set(await matching(q=ids[3][:12])) >= {ids[3]}
        assert len(await matching(q="conn_")) == 11
        # Filtered pages keep their cursors inside the filter.
        page = await queries.connection_page(session, project_id, ConnectionFilter(provider="buffer"), limit=2)
        assert ids_of(page) == [ids[7], ids[5]]
        page = await queries.connection_page(session, project_id, ConnectionFilter(provider="buffer"), after=page.older, limit=2)
        assert ids_of(page) == [ids[3], ids[1]] and page.older is None and page.newer == ids[3]


async def test_queries_never_cross_projects(runtime: Runtime, project: tuple[str, str]) -> None:
    project_id, _ = project
    async with runtime.db.writing() as session:
        other = (await projects.create_project(session, f"other-{uuid.uuid4().hex[:6]}")).id
    mine = await seed(runtime, project_id, 2)
    theirs = await seed(runtime, other, 3, status="error")
    async with runtime.db.sessions() as session:
        assert set(ids_of(await queries.connection_page(session, project_id, ConnectionFilter()))) == set(mine)
        assert ids_of(await queries.connection_page(session, project_id, ConnectionFilter(q=theirs[0]))) == []
        counts = await queries.connection_counts(session, project_id)
        assert counts.total == 2 and counts.by_status == {"active": 2, "error": 0, "revoked": 0}
        attention = await queries.needing_attention(session, project_id, utcnow())
        assert all(not a.connections for a in attention)


async def test_counts_attention_and_recent_failures(runtime: Runtime, project: tuple[str, str]) -> None:
    project_id, _ = project
    now = utcnow()
    await seed(runtime, project_id, 4)
    errors = await seed(runtime, project_id, 2, status="error", provider="buffer", last_error_code="provider_error", last_error_at=now - timedelta(minutes=5), user_id="b2")
    errors += await seed(runtime, project_id, 1, status="error", provider="buffer", last_error_code="provider_error", last_error_at=now, user_id="b3")
    recent = await seed(runtime, project_id, 1, status="revoked", provider="facebook", last_error_code="invalid_grant", last_error_at=now - timedelta(hours=1), user_id="b4")
    await seed(runtime, project_id, 1, status="revoked", provider="facebook", last_error_code="invalid_grant", last_error_at=now - timedelta(days=30), user_id="b5")
    expiring = await seed(runtime, project_id, 1, refresh_failures=2, expires_at=now + timedelta(hours=2), last_error_code="provider_error", user_id="b6")
    expired = await seed(runtime, project_id, 1, refresh_failures=1, expires_at=now - timedelta(minutes=1), last_error_code="provider_error", user_id="b7")
    await seed(runtime, project_id, 1, refresh_failures=0, expires_at=now + timedelta(hours=2), user_id="b8")  # refreshing fine
    await seed(runtime, project_id, 1, refresh_failures=3, expires_at=now + timedelta(days=3), user_id="b9")  # not soon
    async with runtime.db.sessions() as session:
        counts = await queries.connection_counts(session, project_id)
        assert counts.total == 13
        assert counts.by_status == {"active": 8, "error": 3, "revoked": 2}
        assert counts.by_provider == {
            "buffer": {"active": 2, "error": 3, "revoked": 0},
            "facebook": {"active": 0, "error": 0, "revoked": 2},
            "spotify": {"active": 6, "error": 0, "revoked": 0},
        }
        attention = await queries.needing_attention(session, project_id, now, limit=2)
        assert [a.kind for a in attention] == ["error", "revoked", "expiring"]
        assert [c.id for c in attention[0].connections] == [errors[2], errors[1]] and attention[0].more
        assert [c.id for c in attention[1].connections] == recent and not attention[1].more
        assert [c.id for c in attention[2].connections] == [expired[0], expiring[0]] and not attention[2].more

    async with runtime.db.writing() as session:
        row = await session.get(Connection, errors[0])
        assert row is not None
        await record_event(session, row, CREATED)
        await record_event(session, row, REFRESH_FAILED)
        await record_event(session, row, REFRESHED)
        gone = await session.get(Connection, recent[0])
        assert gone is not None
        await record_event(session, gone, REVOKED)
    async with runtime.db.sessions() as session:
        failures = await queries.recent_failures(session, project_id)
        assert [(e.type, e.connection_id) for e in failures] == [(REVOKED, recent[0]), (REFRESH_FAILED, errors[0])]
        assert queries.failure_reason(failures[0]) is not None
        assert queries.failure_reason(failures[0])["code"] == "invalid_grant"  # type: ignore[index]
        timeline = await queries.connection_events(session, project_id, errors[0], limit=2)
        assert [e.type for e in timeline.items] == [REFRESHED, REFRESH_FAILED] and timeline.older is not None
        rest = await queries.connection_events(session, project_id, errors[0], after=timeline.older, limit=2)
        assert [e.type for e in rest.items] == [CREATED] and rest.older is None and rest.newer == rest.items[0].id
        assert (await queries.connection_events(session, "proj_other", errors[0])).items == []


@pytest.mark.parametrize(
    ("q", "expected"),
    [("conn_", None), ("conn_01", "conn_02"), ("conn_0Z", "conn_1"), ("conn_ZZ", None), ("conn_AZZ", "conn_B")],
)
def test_id_prefix_ranges(q: str, expected: str | None) -> None:
    body = q[5:]
    following = queries._next_prefix(body) if body else None
    assert (f"conn_{following}" if following else None) == expected


# -- the pages ----------------------------------------------------------------------------------


@dataclass
class Dashboard:
    """The app in-process with a signed-in operator: `client` carries their session cookie."""

    client: httpx.AsyncClient
    csrf: str
    runtime: Runtime
    operator_id: str

    async def post(self, path: str, data: dict[str, str] | None = None, *, csrf: bool = True) -> httpx.Response:
        form = dict(data or {})
        if csrf:
            form["csrf_token"] = self.csrf
        return await self.client.post(path, data=form)


def fake_request() -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "headers": [(b"user-agent", b"pytest")], "client": ("127.0.0.1", 5000)})


async def sign_in(runtime: Runtime, app: Any, project_ids: list[str] | None) -> Dashboard:
    async with runtime.db.writing() as session:
        operator = await accounts.create_operator(session, f"op-{uuid.uuid4().hex[:8]}@example.com", accounts.hash_password("a long enough password 1"), project_ids)
    started = await sessions.start(runtime.db, operator.id, fake_request())
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://authpipe.test")
    client.cookies.set(sessions.cookie_name(runtime.settings.public_url), started.token)
    return Dashboard(client, started.row.csrf_token, runtime, operator.id)


@pytest.fixture
async def app(runtime: Runtime) -> Any:
    return create_app(runtime, auth_cache_ttl=0.0001)


@pytest.fixture
async def dashboard(runtime: Runtime, app: Any) -> AsyncIterator[Dashboard]:
    signed_in = await sign_in(runtime, app, None)
    yield signed_in
    await signed_in.client.aclose()


# -- reading pages (the standard library's HTML parser, into a small tree) -----------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list["Node | str"]

    def text(self) -> str:
        return " ".join("".join(c if isinstance(c, str) else " " + c.text() + " " for c in self.children).split())

    def all(self, tag: str | None = None, **attrs: str) -> list["Node"]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if (tag is None or child.tag == tag) and all(child.attrs.get(k.rstrip("_")) == v for k, v in attrs.items()):
                    found.append(child)
                found.extend(child.all(tag, **attrs))
        return found

    def one(self, tag: str | None = None, **attrs: str) -> "Node":
        found = self.all(tag, **attrs)
        assert found, f"no <{tag} {attrs}> on the page"
        return found[0]


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {}, [])
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v if v is not None else "" for k, v in attrs}, [])
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(response: httpx.Response) -> Node:
    builder = _TreeBuilder()
    builder.feed(response.text)
    return builder.root


def page_text(response: httpx.Response) -> str:
    """The page's visible text (of <main>), whitespace collapsed."""
    return parse(response).one("main").text()


def links(response: httpx.Response) -> list[str]:
    return [a.attrs["href"] for a in parse(response).all("a") if "href" in a.attrs]


def link_named(response: httpx.Response, text: str) -> str:
    found = [a.attrs["href"] for a in parse(response).all("a") if "href" in a.attrs and text in a.text()]
    assert found, f"no link {text!r} on the page"
    return found[0]


async def test_signed_out_pages_send_to_sign_in(app: Any, project: tuple[str, str]) -> None:
    project_id, _ = project
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://authpipe.test") as anonymous:
        for path in (f"/dashboard/projects/{project_id}", f"/dashboard/projects/{project_id}/connections"):
            response = await anonymous.get(path)
            assert response.status_code == 303 and response.headers["location"].startswith("/dashboard/sign-in")


async def test_list_pages_by_keyset_and_keeps_filters(dashboard: Dashboard, project: tuple[str, str]) -> None:
    project_id, _ = project
    ids = await seed(dashboard.runtime, project_id, 7, account_name="Ada")
    base = f"/dashboard/projects/{project_id}/connections"
    first = await dashboard.client.get(base, params={"limit": "3"})
    assert first.status_code == 200, first.text
    assert first.headers["content-security-policy"].startswith("default-src 'none'")
    assert "7 connections" in page_text(first)
    on_page = [i for i in ids if f"/connections/{i}" in first.text]
    assert on_page == ids[:-4:-1][::-1]  # the newest three
    older = link_named(first, "Older")
    assert "after=" in older and "limit=3" in older and "Newer" not in page_text(first)
    second = await dashboard.client.get(older)
    assert [i for i in ids if f"/connections/{i}" in second.text] == ids[1:4]
    third = await dashboard.client.get(link_named(second, "Older"))
    assert [i for i in ids if f"/connections/{i}" in third.text] == ids[:1]
    assert "Older" not in page_text(third)
    back = await dashboard.client.get(link_named(third, "Newer"))
    assert [i for i in ids if f"/connections/{i}" in back.text] == ids[1:4]

    buffer_only = await dashboard.client.get(base, params={"provider": "buffer", "limit": "2"})
    assert "3 connections match these filters" in page_text(buffer_only)
    older = link_named(buffer_only, "Older")
    assert "provider=buffer" in older
    rest = await dashboard.client.get(older)
    assert [i for i in ids if f"/connections/{i}" in rest.text] == [ids[1]]
    # Empty filter fields (a submitted form) mean "any".
    everything = await dashboard.client.get(base, params={"provider": "", "status": "", "tenant": "", "user": "", "q": ""})
    assert everything.status_code == 200 and "7 connections" in page_text(everything)
    searched = await dashboard.client.get(base, params={"q": ids[2]})
    assert [i for i in ids if f"/connections/{i}" in searched.text] == [ids[2]]
    assert "1 connection matches these filters" in page_text(searched)


MARK = "~zq~"
"""Not a character of any token the page carries (`~`): the page must never echo it."""


@pytest.mark.parametrize(
    "query",
    [
        {"provider": "Not A Provider" + MARK},
        {"status": "broken" + MARK},
        {"tenant": "has space" + MARK},
        {"user": "x" * 257},
        {"q": "x" * 201},
        {"q": "tab\there" + MARK},
        {"after": "conn_nope" + MARK},
        {"before": "evt_01M93PAKYEF7TN3E3ECS1JYGT4"},
        {"after": "conn_01M93PAKYEF7TN3E3ECS1JYGT4", "before": "conn_01M93PAKYEF7TN3E3ECS1JYGT5"},
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "ten" + MARK},
        {"limit": "٣"},
        {"outcome": "refreshed"},  # an outcome of the connection page, not of the list
        {"outcome": MARK},
        [("provider", "spotify"), ("provider", "buffer")],
    ],
)
async def test_bad_list_parameters_answer_a_400_page(dashboard: Dashboard, project: tuple[str, str], query: Any) -> None:
    project_id, _ = project
    response = await dashboard.client.get(f"/dashboard/projects/{project_id}/connections", params=query)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "Bad address" in response.text and "Nothing was looked up" in response.text
    assert MARK not in response.text  # the value is never echoed


async def test_connection_page_shows_the_api_view_and_never_a_secret(dashboard: Dashboard, project: tuple[str, str]) -> None:
    project_id, _ = project
    runtime = dashboard.runtime
    access, refresh = "BQ-secret-access-" + uuid.uuid4().hex, "AQ-secret-refresh-" + uuid.uuid4().hex
    grant = Grant(TokenSet(access_token=access, refresh_token=refresh), utcnow() + timedelta(hours=1), ["user-read-email", "playlist-read-private"])
    described = Described(Account("acct-ada", "Ada Lovelace"), [Resource("page:42", "Analytical Engines")])
    connection, _ = await save_grant(runtime, Owner(project_id, "org_acme", "user_123", "spotify"), grant, described, [])
    page = await dashboard.client.get(f"/dashboard/projects/{project_id}/connections/{connection.id}")
    assert page.status_code == 200, page.text
    text = page_text(page)
    for shown in ("Ada Lovelace", "acct-ada", "org_acme", "user_123", "Spotify", "user-read-email", "playlist-read-private", "Analytical Engines", "page:42", connection.id, "Connected"):
        assert shown in text, shown
    soup = parse(page)
    assert soup.all("img", alt="Spotify")
    api_json = json.loads(soup.one("details").one("pre").text())
    assert api_json == connection_view(connection)
    assert access not in page.text and refresh not in page.text
    for form in soup.all("form", method="post"):
        assert form.all("input", name="csrf_token", value=dashboard.csrf)

    listed = await dashboard.client.get(f"/dashboard/projects/{project_id}/connections")
    assert f"/connections/{connection.id}" in listed.text and access not in listed.text

    for bad in ("not-an-id", "conn_" + "0" * 25, connection.id.lower()):
        assert (await dashboard.client.get(f"/dashboard/projects/{project_id}/connections/{bad}")).status_code == 404
    bad_cursor = await dashboard.client.get(f"/dashboard/projects/{project_id}/connections/{connection.id}", params={"events_after": MARK})
    assert bad_cursor.status_code == 400 and MARK not in bad_cursor.text


async def test_overview_puts_what_needs_attention_first(dashboard: Dashboard, project: tuple[str, str]) -> None:
    project_id, _ = project
    runtime = dashboard.runtime
    now = utcnow()
    empty = await dashboard.client.get(f"/dashboard/projects/{project_id}")
    assert empty.status_code == 200 and "No connections yet" in page_text(empty)

    await seed(runtime, project_id, 5)
    failing = await seed(runtime, project_id, 1, status="error", provider="buffer", account_name="Failing Fran", last_error_code="provider_error", last_error_message="the provider answered 500", last_error_at=now, user_id="e")
    revoked = await seed(runtime, project_id, 1, status="revoked", provider="facebook", account_name="Revoked Rita", last_error_code="invalid_grant", last_error_message="user removed the app", last_error_at=now, user_id="r")
    await seed(runtime, project_id, 1, refresh_failures=2, expires_at=now + timedelta(hours=3), account_name="Expiring Eve", last_error_code="rate_limited", user_id="x")
    async with runtime.db.writing() as session:
        row = await session.get(Connection, revoked[0])
        assert row is not None
        await record_event(session, row, REVOKED)
    page = await dashboard.client.get(f"/dashboard/projects/{project_id}")
    assert page.status_code == 200, page.text
    text = page_text(page)
    assert "8 connections" in text
    assert text.index("Failing Fran") < text.index("Revoked Rita") < text.index("Expiring Eve")
    assert "provider_error the provider answered 500" in text
    assert "Recent failures" in text and "invalid_grant user removed the app" in text
    hrefs = links(page)
    base = f"/dashboard/projects/{project_id}/connections"
    for wanted in (f"{base}?status=error", f"{base}?status=revoked", f"{base}?provider=buffer", f"{base}?provider=buffer&status=error", f"{base}/{failing[0]}"):
        assert wanted in hrefs, wanted
    filtered = await dashboard.client.get(f"{base}?provider=buffer&status=error")
    assert "1 connection matches" in page_text(filtered) and "Failing Fran" in page_text(filtered)


async def test_pages_of_other_projects_are_not_found(runtime: Runtime, app: Any, project: tuple[str, str]) -> None:
    project_a, _ = project
    async with runtime.db.writing() as session:
        project_b = (await projects.create_project(session, f"b-{uuid.uuid4().hex[:6]}")).id
    (conn_a,) = await seed(runtime, project_a, 1, account_name="Alice of A")
    (conn_b,) = await seed(runtime, project_b, 1, account_name="Bob of B")
    limited = await sign_in(runtime, app, [project_a])
    everyone = await sign_in(runtime, app, None)
    try:
        ok = await limited.client.get(f"/dashboard/projects/{project_a}/connections")
        assert ok.status_code == 200 and "Alice of A" in ok.text and "Bob of B" not in ok.text
        for path in (
            f"/dashboard/projects/{project_b}",
            f"/dashboard/projects/{project_b}/connections",
            f"/dashboard/projects/{project_b}/connections/{conn_b}",
            f"/dashboard/projects/{project_b}/connections/{conn_b}/delete",
            f"/dashboard/projects/{project_a}/connections/{conn_b}",  # B's connection through A's URL
        ):
            response = await limited.client.get(path)
            assert response.status_code == 404, path
            assert "Bob of B" not in response.text
        # The operator of every project still cannot reach B's connection through A's URL.
        assert (await everyone.client.get(f"/dashboard/projects/{project_a}/connections/{conn_b}")).status_code == 404
        assert (await everyone.client.get(f"/dashboard/projects/{project_b}/connections/{conn_b}")).status_code == 200
        for action in ("refresh", "check", "delete"):
            for path in (f"/dashboard/projects/{project_b}/connections/{conn_b}/{action}", f"/dashboard/projects/{project_a}/connections/{conn_b}/{action}"):
                response = await limited.post(path, {"confirm": "yes"})
                assert response.status_code == 404, path
            response = await everyone.post(f"/dashboard/projects/{project_a}/connections/{conn_b}/{action}", {"confirm": "yes"})
            assert response.status_code == 404
        async with runtime.db.sessions() as session:
            still = await session.get(Connection, conn_b)
            assert still is not None and still.last_checked_at is None and still.last_refreshed_at is None
    finally:
        await limited.client.aclose()
        await everyone.client.aclose()


# -- the buttons, against the Spotify emulator as a real server ----------------------------------


@pytest.fixture
def spotify() -> Iterator[tuple[Any, str]]:
    app = spotify_emulator.create_app()
    with serve_in_thread(app) as url:
        yield app.state.emulator, url


async def emulated_connection(runtime: Runtime, project_id: str, spotify: tuple[Any, str]) -> tuple[Connection, Any]:
    """A connection whose tokens the emulator issued (as a connect flow would have)."""
    emulator, url = spotify
    await save_app(runtime, project_id, "spotify", client_id=SANDBOX_CLIENT_ID, client_secret=SANDBOX_CLIENT_SECRET, scopes=[], overrides=overrides("spotify", url), definition=None)
    now = emulator.core.now()
    grant = EmulatedGrant(id=uuid.uuid4().hex[:16], client_id=SANDBOX_CLIENT_ID, user_id="sandbox_user", scopes=("user-read-email",), declined=(), authorized_at=now, public=False)
    emulator.oauth.grants[grant.id] = grant
    access = emulator.oauth.issue_access(grant, now=now, expires_at=now + 3600)
    refresh = emulator.oauth.issue_refresh(grant, now=now, expires_at=None)
    tokens = Grant(TokenSet(access_token=access.value, refresh_token=refresh.value), utcnow() + timedelta(hours=1), ["user-read-email"])
    connection, _ = await save_grant(runtime, Owner(project_id, "org_acme", "user_123", "spotify"), tokens, Described(Account("spotify:user:sandbox_user", "Sandbox User")), [])
    return connection, grant


async def audit_actions(runtime: Runtime, target: str) -> list[tuple[str, str | None]]:
    async with runtime.db.sessions() as session:
        rows = (await session.scalars(select(AuditEntry).where(AuditEntry.target == target).order_by(AuditEntry.id))).all()
    return [(r.action, (r.detail or {}).get("outcome")) for r in rows]


async def event_types(runtime: Runtime, connection_id: str) -> list[str]:
    async with runtime.db.sessions() as session:
        return list((await session.scalars(select(Event.type).where(Event.connection_id == connection_id).order_by(Event.id))).all())


async def test_buttons_act_through_the_services_and_are_audited(dashboard: Dashboard, project: tuple[str, str], spotify: tuple[Any, str]) -> None:
    project_id, _ = project
    runtime = dashboard.runtime
    connection, grant = await emulated_connection(runtime, project_id, spotify)
    emulator, _ = spotify
    url = f"/dashboard/projects/{project_id}/connections/{connection.id}"

    refreshed = await dashboard.post(f"{url}/refresh")
    assert refreshed.status_code == 303 and refreshed.headers["location"] == f"{url}?outcome=refreshed"
    page = await dashboard.client.get(refreshed.headers["location"])
    assert "Refreshed: the provider issued a new access token." in page_text(page)
    assert "Token refreshed" in page_text(page)
    assert await event_types(runtime, connection.id) == ["connection.created", "connection.refreshed"]

    checked = await dashboard.post(f"{url}/check")
    assert checked.headers["location"] == f"{url}?outcome=checked"

    emulator.core.faults.add(mode="500", remaining=10, kind=None, retry_after=None, until=None)
    failed = await dashboard.post(f"{url}/refresh")
    assert failed.headers["location"] == f"{url}?outcome=refresh_failed"
    failed_check = await dashboard.post(f"{url}/check")
    assert failed_check.headers["location"] == f"{url}?outcome=check_failed"
    emulator.core.faults.clear()

    emulator.oauth.revoke_grant(grant, "revoked")
    revoked = await dashboard.post(f"{url}/check")
    assert revoked.headers["location"] == f"{url}?outcome=check_revoked"
    page = await dashboard.client.get(revoked.headers["location"])
    assert parse(page).one(id="conn-status").text() == "revoked"
    assert "Why it is revoked" in page_text(page)
    again = await dashboard.post(f"{url}/refresh")
    assert again.headers["location"] == f"{url}?outcome=already_revoked"

    assert await audit_actions(runtime, connection.id) == [
        ("connection.refresh", "refreshed"),
        ("connection.check", "checked"),
        ("connection.refresh", "refresh_failed"),
        ("connection.check", "check_failed"),
        ("connection.check", "check_revoked"),
        ("connection.refresh", "already_revoked"),
    ]


async def test_forms_without_their_csrf_token_are_refused(dashboard: Dashboard, project: tuple[str, str], spotify: tuple[Any, str]) -> None:
    project_id, _ = project
    runtime = dashboard.runtime
    connection, _ = await emulated_connection(runtime, project_id, spotify)
    url = f"/dashboard/projects/{project_id}/connections/{connection.id}"
    for action in ("refresh", "check", "delete"):
        missing = await dashboard.post(f"{url}/{action}", {"confirm": "yes"}, csrf=False)
        assert missing.status_code == 403, action
        wrong = await dashboard.client.post(f"{url}/{action}", data={"confirm": "yes", "csrf_token": "x" * 43})
        assert wrong.status_code == 403, action
    assert await event_types(runtime, connection.id) == ["connection.created"]
    assert await audit_actions(runtime, connection.id) == []


async def test_delete_asks_for_confirmation_then_revokes_and_erases(dashboard: Dashboard, project: tuple[str, str], spotify: tuple[Any, str]) -> None:
    project_id, _ = project
    runtime = dashboard.runtime
    connection, _ = await emulated_connection(runtime, project_id, spotify)
    url = f"/dashboard/projects/{project_id}/connections/{connection.id}"
    page = await dashboard.client.get(url)
    assert f"{url}/delete" in links(page)
    confirm = await dashboard.client.get(f"{url}/delete")
    assert confirm.status_code == 200
    soup = parse(confirm)
    box = soup.one("input", name="confirm", type="checkbox")
    assert "required" in box.attrs and soup.all("label", for_=box.attrs["id"])

    unconfirmed = await dashboard.post(f"{url}/delete")
    assert unconfirmed.status_code == 400 and "Tick the box to confirm. Nothing was deleted." in page_text(unconfirmed)
    assert (await dashboard.client.get(url)).status_code == 200

    deleted = await dashboard.post(f"{url}/delete", {"confirm": "yes"})
    assert deleted.status_code == 303
    assert deleted.headers["location"] == f"/dashboard/projects/{project_id}/connections?outcome=deleted"
    listed = await dashboard.client.get(deleted.headers["location"])
    assert "Deleted: the connection and its secrets are erased" in page_text(listed)
    assert (await dashboard.client.get(url)).status_code == 404
    async with runtime.db.sessions() as session:
        event = (await session.scalars(select(Event).where(Event.connection_id == connection.id).order_by(Event.id.desc()))).first()
    # As DELETE /v1/connections/{id} records it (Spotify has no revocation endpoint: nothing to revoke).
    assert event is not None and event.type == "connection.deleted" and event.data["data"]["revocation"] == {"ok": True, "code": None}
    assert await audit_actions(runtime, connection.id) == [("connection.delete", "deleted")]
    assert (await dashboard.post(f"{url}/delete", {"confirm": "yes"})).status_code == 404


async def test_counts_stop_at_the_cap(runtime: Runtime, project: tuple[str, str]) -> None:
    project_id, _ = project
    await seed(runtime, project_id, 5)
    async with runtime.db.sessions() as session:
        assert await queries.count_connections(session, project_id, ConnectionFilter(), cap=3) == 4
        assert await queries.count_connections(session, project_id, ConnectionFilter(), cap=5) == 5
        assert await queries.count_connections(session, project_id, ConnectionFilter(provider="buffer"), cap=5) == 2


async def test_a_failing_project_still_lists_only_the_first_of_each_kind(runtime: Runtime, project: tuple[str, str]) -> None:
    project_id, _ = project
    now = utcnow()
    for minutes in range(4):
        await seed(runtime, project_id, 3, status="error", last_error_code="provider_error", last_error_at=now - timedelta(minutes=minutes), user_id=f"m{minutes}")
    async with runtime.db.sessions() as session:
        errors, revoked, expiring = await queries.needing_attention(session, project_id, now, limit=4)
    assert len(errors.connections) == 4 and errors.more and not revoked.connections and not expiring.connections
    assert [c.last_error_at for c in errors.connections] == sorted((c.last_error_at for c in errors.connections), reverse=True)
    assert errors.connections[0].last_error_at == now


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=-20), "less than a minute ago"),
        (timedelta(minutes=5, seconds=30), "in 5 min"),
        (timedelta(hours=-3), "3 h ago"),
        (timedelta(hours=47), "in 47 h"),
        (timedelta(days=-10), "10 days ago"),
        (timedelta(days=90), None),
    ],
)
def test_times_in_words(delta: timedelta, text: str | None) -> None:
    now = utcnow().replace(microsecond=0)
    shown = moment(now + delta, now)
    assert shown is not None and shown.iso == (now + delta).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert shown.text == (text or (now + delta).strftime("%Y-%m-%d"))
    assert shown.utc.endswith(" UTC")
    assert moment(None, now) is None
