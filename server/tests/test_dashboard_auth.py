"""The dashboard's sign-in, sessions, CSRF checks, throttling, project limits and audit log, in
process against SQLite and PostgreSQL (the browser tests drive the same pages in Chromium)."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta
from typing import AsyncIterator

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select, update
from starlette.requests import Request

from authpipe_server import projects
from authpipe_server.api.app import create_app
from authpipe_server.dashboard import accounts, audit, sessions
from authpipe_server.dashboard.auth import Operator, PageRefusal, project_for, safe_next, visible_projects
from authpipe_server.runtime import Runtime
from authpipe_server.store.models import AuditEntry, OperatorSession
from authpipe_server.store.models import Operator as OperatorRow
from authpipe_server.store.types import utcnow
from authpipe_server.tokens import token_hash

PUBLIC = "http://127.0.0.1:8080"
"""The default public URL: the in-process clients address the app by it (the sandbox checks the Host)."""
PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def add_operator(runtime: Runtime, email: str, project_ids: list[str] | None = None, password: str = PASSWORD) -> str:
    async with runtime.db.writing() as session:
        row = await accounts.create_operator(session, email, accounts.hash_password(password), project_ids)
    return row.id


async def add_project(runtime: Runtime, name: str) -> str:
    async with runtime.db.writing() as session:
        return (await projects.create_project(session, name)).id


def client_of(app: object, address: str = "127.0.0.1", base_url: str = PUBLIC) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 50000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url=base_url)


@pytest.fixture
async def dashboard(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(create_app(runtime)) as client:
        yield client


async def sign_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD, next_path: str | None = None) -> httpx.Response:
    """Open the form (which hands out its token) and post it, as a browser would."""
    form = await client.get("/dashboard/sign-in")
    assert form.status_code == 200, form.text
    data = {"email": email, "password": password, "csrf_token": CSRF.search(form.text).group(1)}  # type: ignore[union-attr]
    if next_path is not None:
        data["next"] = next_path
    return await client.post("/dashboard/sign-in", data=data)


async def page_csrf(client: httpx.AsyncClient, path: str = "/dashboard/audit") -> str:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    return CSRF.search(page.text).group(1)  # type: ignore[union-attr]


async def entries(runtime: Runtime, action: str) -> list[AuditEntry]:
    async with runtime.db.sessions() as session:
        return list(await session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


# -- accounts ---------------------------------------------------------------------------------


def test_passwords_shorter_than_twelve_characters_are_refused() -> None:
    with pytest.raises(accounts.AccountError, match="at least 12 characters"):
        accounts.hash_password("eleven char")
    with pytest.raises(accounts.AccountError, match="only spaces"):
        accounts.hash_password(" " * 12)
    stored = accounts.hash_password("twelve chars")
    assert stored.startswith("$argon2id$") and "twelve" not in stored


@pytest.mark.parametrize("email", ["", "no-at-sign", "two@@example.com", "a b@example.com", "@example.com", "x" * 250 + "@ex.com"])
def test_email_must_be_an_email(email: str) -> None:
    with pytest.raises(accounts.AccountError, match="not an email address"):
        accounts.normalize_email(email)


async def test_emails_are_unique_whatever_their_case(runtime: Runtime, dashboard: httpx.AsyncClient) -> None:
    await add_operator(runtime, "Ops@Example.COM")
    with pytest.raises(accounts.AccountError, match="already exists"):
        await add_operator(runtime, "ops@example.com")
    signed_in = await sign_in(dashboard, "OPS@example.com")
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/dashboard"


async def test_an_outdated_hash_is_upgraded_at_sign_in(runtime: Runtime, dashboard: httpx.AsyncClient) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    async with runtime.db.writing() as session:
        await accounts.create_operator(session, "old@example.com", weak, None)
    assert (await sign_in(dashboard, "old@example.com")).status_code == 303
    async with runtime.db.sessions() as session:
        stored = await session.scalar(select(OperatorRow.password_hash).where(OperatorRow.email == "old@example.com"))
    assert stored != weak and not accounts.hasher.check_needs_rehash(stored)
    assert accounts.hasher.verify(stored, PASSWORD)


# -- sign-in and sessions ---------------------------------------------------------------------


async def test_sign_in_sets_an_httponly_lax_cookie_stored_only_as_a_hash(runtime: Runtime, dashboard: httpx.AsyncClient) -> None:
    operator_id = await add_operator(runtime, "ops@example.com")
    response = await sign_in(dashboard, "ops@example.com")
    assert response.status_code == 303 and response.headers["location"] == "/dashboard"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("authpipe_dashboard="))
    token = cookie.split(";")[0].split("=", 1)[1]
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "path=/", "samesite=lax"} <= attributes and "secure" not in attributes
    assert not any(a.startswith(("max-age", "expires")) for a in attributes)  # a browser-session cookie
    async with runtime.db.sessions() as session:
        row = await session.scalar(select(OperatorSession).where(OperatorSession.operator_id == operator_id))
    assert row is not None and row.token_hash == token_hash(token) and token not in (row.csrf_token, row.id)
    assert row.expires_at - row.created_at == sessions.ABSOLUTE_TIMEOUT
    assert row.address == "127.0.0.1" and row.user_agent and row.user_agent.startswith("python-httpx")
    [entry] = await entries(runtime, audit.SIGN_IN)
    assert entry.email == "ops@example.com" and entry.operator_id == operator_id and entry.address == "127.0.0.1"
    assert (await dashboard.get("/dashboard/audit")).status_code == 200


async def test_https_public_url_makes_the_cookie_host_only_and_secure(runtime: Runtime) -> None:
    secure = dataclasses.replace(runtime.settings, public_url="https://auth.example.com")
    await add_operator(runtime, "ops@example.com")
    async with client_of(create_app(Runtime(secure, runtime.db, runtime.vault, runtime.egress)), base_url="https://auth.example.com") as client:
        response = await sign_in(client, "ops@example.com")
    assert response.status_code == 303
    cookie = next(c for c in response.headers.get_list("set-cookie") if "authpipe_dashboard=" in c)
    assert cookie.startswith("__Host-authpipe_dashboard=") and "secure" in cookie.lower() and "Path=/" in cookie


async def test_without_a_session_pages_redirect_to_sign_in_and_back(runtime: Runtime, dashboard: httpx.AsyncClient) -> None:
    await add_operator(runtime, "ops@example.com")
    response = await dashboard.get("/dashboard/audit?before=aud_01ARZ3NDEKTSV4RRFFQ69G5FAV")
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/sign-in?next=/dashboard/audit%3Fbefore%3Daud_01ARZ3NDEKTSV4RRFFQ69G5FAV"
    form = await dashboard.get(response.headers["location"])
    assert 'name="next" value="/dashboard/audit?before=aud_01ARZ3NDEKTSV4RRFFQ69G5FAV"' in form.text
    signed_in = await sign_in(dashboard, "ops@example.com", next_path="/dashboard/audit?before=aud_01ARZ3NDEKTSV4RRFFQ69G5FAV")
    assert signed_in.headers["location"] == "/dashboard/audit?before=aud_01ARZ3NDEKTSV4RRFFQ69G5FAV"
    again = await dashboard.get("/dashboard/sign-in?next=/dashboard/audit")  # already signed in
    assert again.status_code == 303 and again.headers["location"] == "/dashboard/audit"
    posted = await client_of(dashboard._transport.app).post("/dashboard/sign-out", data={"csrf_token": "x"})  # type: ignore[attr-defined]
    assert posted.status_code == 303 and posted.headers["location"] == "/dashboard/sign-in"  # a form target is no page to return to


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/dashboard", "/dashboard"),
        ("/dashboard/projects/proj_1/keys?x=1", "/dashboard/projects/proj_1/keys?x=1"),
        ("//evil.example/dashboard", None),
        ("https://evil.example/dashboard", None),
        ("/\\evil.example", None),
        ("/dashboard/../v1/connections", None),
        ("/dashboard/%2e%2e/docs", None),
        ("/dashboard/%2E%2e", None),
        ("/dashboard/%2f%2fevil.example", None),
        ("/dashboard/%5cevil", None),
        ("/dashboardx", None),
        ("/docs", None),
        ("dashboard", None),
        ("/dashboard//evil", None),
        ("/dashboard\r\nSet-Cookie: x=1", None),
        ("/dashboard#frag", None),
        ("javascript:alert(1)", None),
        ("", None),
        (None, None),
    ],
)
def test_next_is_only_ever_a_dashboard_path(value: str | None, expected: str | None) -> None:
    assert safe_next(value) == expected


async def test_an_outside_next_lands_on_the_dashboard(runtime: Runtime, dashboard: httpx.AsyncClient) -> None:
    await add_operator(runtime, "ops@example.com")
    response = await sign_in(dashboard, "ops@example.com", next_path="//evil.example/")
    assert response.headers["location"] == "/dashboard"


async def test_idle_and_absolute_expiry_end_a_session(runtime: Runtime, dashboard: httpx.AsyncClient) -> None:
    operator_id = await add_operator(runtime, "ops@example.com")
    await sign_in(dashboard, "ops@example.com")
    assert (await dashboard.get("/dashboard/audit")).status_code == 200

    async def set_times(**values: object) -> None:
        async with runtime.db.writing() as session:
            await session.execute(update(OperatorSession).where(OperatorSession.operator_id == operator_id).values(**values))

    now = utcnow()
    await set_times(last_seen_at=now - timedelta(minutes=5))
    assert (await dashboard.get("/dashboard/audit")).status_code == 200
    async with runtime.db.sessions() as session:
        seen = await session.scalar(select(OperatorSession.last_seen_at).where(OperatorSession.operator_id == operator_id))
    assert seen is not None and seen > now - timedelta(seconds=30)  # use keeps it alive

    await set_times(last_seen_at=now - sessions.IDLE_TIMEOUT - timedelta(seconds=1))
    assert (await dashboard.get("/dashboard/audit")).status_code == 303
    await set_times(last_seen_at=now, expires_at=now - timedelta(seconds=1))  # fresh, but past its absolute end
    assert (await dashboard.get("/dashboard/audit")).status_code == 303


async def test_sign_out_revokes_the_session_everywhere(runtime: Runtime, dashboard: httpx.AsyncClient) -> None:
    await add_operator(runtime, "ops@example.com")
    await sign_in(dashboard, "ops@example.com")
    token = dashboard.cookies["authpipe_dashboard"]
    csrf = await page_csrf(dashboard)
    out = await dashboard.post("/dashboard/sign-out", data={"csrf_token": csrf})
    assert out.status_code == 303 and out.headers["location"] == "/dashboard/sign-in?signed_out=1"
    assert "authpipe_dashboard=" in out.headers["set-cookie"] and "Max-Age=0" in out.headers["set-cookie"]
    async with client_of(dashboard._transport.app) as copy:  # type: ignore[attr-defined]
        copy.cookies.set("authpipe_dashboard", token)  # the old cookie, kept by someone
        assert (await copy.get("/dashboard/audit")).status_code == 303
    assert "You are signed out." in (await dashboard.get(out.headers["location"])).text
    assert [e.email for e in await entries(runtime, audit.SIGN_OUT)] == ["ops@example.com"]


async def test_a_new_password_or_deletion_ends_every_session(runtime: Runtime, dashboard: httpx.AsyncClient) -> None:
    await add_operator(runtime, "ops@example.com")
    await sign_in(dashboard, "ops@example.com")
    async with client_of(dashboard._transport.app) as other:  # type: ignore[attr-defined]
        await sign_in(other, "ops@example.com")
        async with runtime.db.writing() as session:
            ended = await accounts.set_password(session, "ops@example.com", accounts.hash_password("a brand new password"))
        assert ended == 2
        assert (await dashboard.get("/dashboard/audit")).status_code == 303
        assert (await other.get("/dashboard/audit")).status_code == 303
        await sign_in(other, "ops@example.com", "a brand new password")
        assert (await other.get("/dashboard/audit")).status_code == 200
        async with runtime.db.writing() as session:
            assert await accounts.delete_operator(session, "ops@example.com") == 1
        assert (await other.get("/dashboard/audit")).status_code == 303
    async with runtime.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(OperatorSession)) == 0


async def test_signing_in_again_replaces_the_browsers_session(runtime: Runtime, dashboard: httpx.AsyncClient) -> None:
    await add_operator(runtime, "ops@example.com")
    await add_operator(runtime, "other@example.com")
    form = await dashboard.get("/dashboard/sign-in")  # open in another tab before signing in
    token = CSRF.search(form.text).group(1)  # type: ignore[union-attr]
    await sign_in(dashboard, "ops@example.com")
    first = dashboard.cookies["authpipe_dashboard"]
    again = await dashboard.post("/dashboard/sign-in", data={"email": "other@example.com", "password": PASSWORD, "csrf_token": token})
    assert again.status_code == 303
    assert dashboard.cookies["authpipe_dashboard"] != first
    assert await sessions.find(runtime.db, first) is None
    assert "other@example.com" in (await dashboard.get("/dashboard/audit")).text


# -- wrong passwords, throttling ----------------------------------------------------------------


async def test_wrong_email_and_wrong_password_get_the_same_answer_after_hashing(
    runtime: Runtime, dashboard: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_operator(runtime, "ops@example.com")
    verified: list[str] = []
    real_verify = accounts._verify
    monkeypatch.setattr(accounts, "_verify", lambda stored, password: verified.append(stored) or real_verify(stored, password))
    wrong_password = await sign_in(dashboard, "ops@example.com", "not the password at all")
    wrong_email = await sign_in(dashboard, "nobody@example.com", PASSWORD)
    for response in (wrong_password, wrong_email):
        assert response.status_code == 200 and "Wrong email or password." in response.text
        assert "authpipe_dashboard=" not in response.headers.get("set-cookie", "")
    assert len(verified) == 2 and all(stored.startswith("$argon2id$") for stored in verified)  # an unknown email is hashed too
    failed = await entries(runtime, audit.SIGN_IN_FAILED)
    assert [e.email for e in failed] == ["ops@example.com", "nobody@example.com"]
    assert all(e.operator_id is None and e.address == "127.0.0.1" for e in failed)
    assert not any("not the password" in str(e.detail) for e in failed)


async def test_five_failures_from_an_address_refuse_it_without_checking_the_password(
    runtime: Runtime, dashboard: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_operator(runtime, "ops@example.com")
    for attempt in range(audit.FAILURE_LIMIT):
        assert "Wrong email or password." in (await sign_in(dashboard, f"guess{attempt}@example.com")).text

    async def must_not_run(*_: object) -> None:
        raise AssertionError("the password was checked while throttled")

    monkeypatch.setattr(accounts, "authenticate", must_not_run)
    refused = await sign_in(dashboard, "ops@example.com")
    assert refused.status_code == 429 and "Too many failed sign-ins" in refused.text
    assert 14 * 60 <= int(refused.headers["retry-after"]) <= 15 * 60
    # Another process (another app on the same database) refuses the address too.
    async with client_of(create_app(runtime)) as other_process:
        assert (await sign_in(other_process, "ops@example.com")).status_code == 429
    # Another address is not refused.
    monkeypatch.undo()
    async with client_of(dashboard._transport.app, address="192.0.2.10") as elsewhere:  # type: ignore[attr-defined]
        assert (await sign_in(elsewhere, "ops@example.com")).status_code == 303
    # Once the oldest failure is 15 minutes old, the address may try again.
    async with runtime.db.writing() as session:
        await session.execute(update(AuditEntry).where(AuditEntry.action == audit.SIGN_IN_FAILED).values(created_at=utcnow() - audit.FAILURE_WINDOW))
    assert (await sign_in(dashboard, "ops@example.com")).status_code == 303


async def test_five_failures_for_an_email_refuse_it_from_every_address(runtime: Runtime, dashboard: httpx.AsyncClient) -> None:
    await add_operator(runtime, "ops@example.com")
    await add_operator(runtime, "other@example.com")
    app = dashboard._transport.app  # type: ignore[attr-defined]
    for attempt in range(audit.FAILURE_LIMIT):
        async with client_of(app, address=f"198.51.100.{attempt + 1}") as guesser:
            assert (await sign_in(guesser, "OPS@example.com", "wrong password here")).status_code == 200
    async with client_of(app, address="203.0.113.7") as owner:
        refused = await sign_in(owner, "ops@example.com")
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        assert (await sign_in(owner, "other@example.com")).status_code == 303


async def test_ipv6_guessers_are_counted_per_64(runtime: Runtime, dashboard: httpx.AsyncClient) -> None:
    await add_operator(runtime, "ops@example.com")
    app = dashboard._transport.app  # type: ignore[attr-defined]
    for attempt in range(audit.FAILURE_LIMIT):
        async with client_of(app, address=f"2001:db8:1:2::{attempt + 1:x}") as guesser:
            await sign_in(guesser, f"guess{attempt}@example.com")
    async with client_of(app, address="2001:db8:1:2::ffff") as same_prefix:
        assert (await sign_in(same_prefix, "ops@example.com")).status_code == 429


# -- CSRF -------------------------------------------------------------------------------------


async def test_the_sign_in_form_needs_its_own_token(runtime: Runtime, dashboard: httpx.AsyncClient) -> None:
    await add_operator(runtime, "ops@example.com")
    await dashboard.get("/dashboard/sign-in")  # the browser has its form cookie
    for token in (None, "", "forged-value-from-another-site"):
        data = {"email": "ops@example.com", "password": PASSWORD} | ({"csrf_token": token} if token is not None else {})
        refused = await dashboard.post("/dashboard/sign-in", data=data)
        assert refused.status_code == 403 and "Nothing was checked" in refused.text
    async with client_of(dashboard._transport.app) as cookieless:  # type: ignore[attr-defined]
        refused = await cookieless.post("/dashboard/sign-in", data={"email": "ops@example.com", "password": PASSWORD, "csrf_token": "abc"})
        assert refused.status_code == 403
    async with runtime.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(OperatorSession)) == 0
    assert await entries(runtime, audit.SIGN_IN_FAILED) == []  # refused before anything was counted


async def test_a_state_changing_form_without_the_session_token_is_refused(runtime: Runtime, dashboard: httpx.AsyncClient) -> None:
    await add_operator(runtime, "ops@example.com")
    await sign_in(dashboard, "ops@example.com")
    csrf = await page_csrf(dashboard)
    for data in ({}, {"csrf_token": ""}, {"csrf_token": csrf[:-1] + ("A" if csrf[-1] != "A" else "B")}):
        refused = await dashboard.post("/dashboard/sign-out", data=data)
        assert refused.status_code == 403 and "Nothing was changed" in refused.text
        assert refused.headers["content-security-policy"].startswith("default-src 'none'")
    assert (await dashboard.get("/dashboard/audit")).status_code == 200  # still signed in
    assert await entries(runtime, audit.SIGN_OUT) == []
    # Another operator's token is no good either: it belongs to their session.
    await add_operator(runtime, "other@example.com")
    async with client_of(dashboard._transport.app) as other:  # type: ignore[attr-defined]
        await sign_in(other, "other@example.com")
        others = await page_csrf(other)
    assert (await dashboard.post("/dashboard/sign-out", data={"csrf_token": others})).status_code == 403


# -- project limits ---------------------------------------------------------------------------


async def test_an_operator_limited_to_a_project_sees_only_it(runtime: Runtime, dashboard: httpx.AsyncClient) -> None:
    a, b = await add_project(runtime, "alpha"), await add_project(runtime, "beta")
    await add_operator(runtime, "alpha-ops@example.com", [a])
    limited = Operator(id="op_x", email="alpha-ops@example.com", project_ids=frozenset({a}), session_id="ds_x", csrf_token="t")
    everyone = Operator(id="op_y", email="root@example.com", project_ids=None, session_id="ds_y", csrf_token="t")
    assert [p.id for p in await visible_projects(runtime, limited)] == [a]
    assert [p.id for p in await visible_projects(runtime, everyone)] == [a, b]
    assert (await project_for(runtime, limited, a)).name == "alpha"
    refusals = []
    for project_id in (b, "proj_01ARZ3NDEKTSV4RRFFQ69G5FAV", "x" * 500):
        with pytest.raises(PageRefusal) as refused:
            await project_for(runtime, limited if project_id == b else everyone, project_id)
        refusals.append((refused.value.status, refused.value.template, refused.value.message))
    assert len(set(refusals)) == 1 and refusals[0][0] == 404  # another's project reads as no project at all

    await sign_in(dashboard, "alpha-ops@example.com")
    home = await dashboard.get("/dashboard")
    assert home.status_code == 303 and home.headers["location"] == f"/dashboard/projects/{a}"
    page = await dashboard.get("/dashboard/audit")
    assert f'value="{a}"' in page.text and f'value="{b}"' not in page.text and "beta" not in page.text
    switched = await dashboard.get("/dashboard/switch", params={"project": a, "section": "keys"})
    assert switched.status_code == 303 and switched.headers["location"] == f"/dashboard/projects/{a}/keys"
    refused_page = await dashboard.get("/dashboard/switch", params={"project": b, "section": "keys"})
    assert refused_page.status_code == 404 and "Not found" in refused_page.text and "beta" not in refused_page.text


async def test_the_first_project_is_where_the_dashboard_opens(runtime: Runtime, dashboard: httpx.AsyncClient) -> None:
    await add_operator(runtime, "root@example.com")
    await sign_in(dashboard, "root@example.com")
    empty = await dashboard.get("/dashboard")
    assert empty.status_code == 200 and "authpipe projects create" in empty.text
    first = await add_project(runtime, "first")
    await add_project(runtime, "second")
    home = await dashboard.get("/dashboard")
    assert home.status_code == 303 and home.headers["location"] == f"/dashboard/projects/{first}"


# -- the audit log ----------------------------------------------------------------------------


def fake_request(path_params: dict[str, str] | None = None, address: str = "192.0.2.1") -> Request:
    return Request({
        "type": "http", "method": "POST", "path": "/dashboard/x", "headers": [(b"user-agent", b"pytest")],
        "client": (address, 1), "path_params": path_params or {}, "query_string": b"",
    })


async def test_audit_entries_record_who_what_where_and_their_project(runtime: Runtime) -> None:
    project_id = await add_project(runtime, "alpha")
    who = Operator(id="op_1", email="Ops@Example.com", project_ids=None, session_id="ds", csrf_token="t")
    await audit.record(runtime, who, "key.revoke", "ap_sk_AbCd1234", fake_request({"project_id": project_id}), {"reason": "leaked"})
    [entry] = await entries(runtime, "key.revoke")
    assert (entry.email, entry.operator_id, entry.project_id, entry.target) == ("ops@example.com", "op_1", project_id, "ap_sk_AbCd1234")
    assert (entry.address, entry.user_agent, entry.detail) == ("192.0.2.1", "pytest", {"reason": "leaked"})
    assert entry.created_at > utcnow() - timedelta(seconds=30)


async def test_the_audit_log_pages_newest_first_without_gaps(runtime: Runtime, dashboard: httpx.AsyncClient) -> None:
    await add_operator(runtime, "root@example.com")
    async with runtime.db.writing() as session:
        for n in range(2 * audit.PAGE_SIZE + 7):
            session.add(audit.entry("root@example.com", "test.step", f"step-{n:03d}", fake_request()))
    await sign_in(dashboard, "root@example.com")
    pages: list[list[str]] = []
    page = await dashboard.get("/dashboard/audit")
    while True:
        assert 'aria-current="page"' in page.text and ">Audit log</a>" in page.text
        pages.append(re.findall(r"step-\d{3}", page.text))
        older = re.search(r'href="(/dashboard/audit\?before=aud_[0-9A-Z]{26})"', page.text)
        if older is None:
            break
        page = await dashboard.get(older.group(1))
    assert [len(p) for p in pages] == [audit.PAGE_SIZE - 1, audit.PAGE_SIZE, 8]  # the newest entry is the sign-in
    assert sum(pages, []) == [f"step-{n:03d}" for n in reversed(range(2 * audit.PAGE_SIZE + 7))]
    newer = re.search(r'href="(/dashboard/audit\?after=aud_[0-9A-Z]{26})"', page.text)
    assert newer is not None
    back = await dashboard.get(newer.group(1))
    assert re.findall(r"step-\d{3}", back.text) == pages[1]
    assert (await dashboard.get("/dashboard/audit?before=not-an-id")).status_code == 404


async def test_a_limited_operator_reads_only_their_projects_and_their_own_entries(runtime: Runtime, dashboard: httpx.AsyncClient) -> None:
    a, b = await add_project(runtime, "alpha"), await add_project(runtime, "beta")
    await add_operator(runtime, "alpha-ops@example.com", [a])
    await audit.record(runtime, "root@example.com", "key.create", "in-alpha", fake_request({"project_id": a}))
    await audit.record(runtime, "root@example.com", "key.create", "in-beta", fake_request({"project_id": b}))
    await audit.record(runtime, "root@example.com", audit.SIGN_IN, "root-sign-in", fake_request())
    await audit.record(runtime, "alpha-ops@example.com", audit.SIGN_IN_FAILED, "own-failure", fake_request())
    await sign_in(dashboard, "alpha-ops@example.com")
    text = (await dashboard.get("/dashboard/audit")).text
    assert "in-alpha" in text and "own-failure" in text and "alpha-ops@example.com" in text
    assert "in-beta" not in text and "root-sign-in" not in text


# -- the sandbox signs its own browser in ------------------------------------------------------


@pytest.fixture
async def sandbox_app(runtime: Runtime) -> object:
    await accounts.ensure_sandbox_operator(runtime)
    await accounts.ensure_sandbox_operator(runtime)  # each start: the same operator, kept
    await add_project(runtime, "default")
    return create_app(runtime, sandbox=True)


async def test_the_sandbox_signs_in_a_browser_on_this_machine(runtime: Runtime, sandbox_app: object) -> None:
    async with client_of(sandbox_app) as browser:
        first = await browser.get("/dashboard/audit")
        assert first.status_code == 303 and first.headers["location"] == "/dashboard/audit"
        assert "authpipe_dashboard=" in first.headers["set-cookie"]
        page = await browser.get("/dashboard/audit")
        assert page.status_code == 200
        assert "Signed in automatically (sandbox)" in page.text and accounts.SANDBOX_EMAIL in page.text
    [entry] = await entries(runtime, audit.SIGN_IN)
    assert entry.email == accounts.SANDBOX_EMAIL and entry.detail == {"automatic": True}
    async with runtime.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(OperatorRow)) == 1


@pytest.mark.parametrize(
    ("address", "base_url", "method"),
    [
        ("192.0.2.5", PUBLIC, "GET"),  # another machine
        ("127.0.0.1", "http://localhost:8080", "GET"),  # a name other than the public URL's (DNS rebinding)
        ("127.0.0.1", PUBLIC, "POST"),  # only page loads sign in, never a form post
    ],
)
async def test_the_sandbox_does_not_sign_in_others(sandbox_app: object, address: str, base_url: str, method: str) -> None:
    async with client_of(sandbox_app, address=address, base_url=base_url) as browser:
        response = await browser.request(method, "/dashboard/sign-out" if method == "POST" else "/dashboard")
        assert response.status_code == 303 and response.headers["location"].startswith("/dashboard/sign-in")
        assert "authpipe_dashboard=" not in response.headers.get("set-cookie", "")


async def test_serve_never_signs_anyone_in(runtime: Runtime) -> None:
    await accounts.ensure_sandbox_operator(runtime)  # even with the sandbox's operator in the database
    async with client_of(create_app(runtime)) as browser:
        response = await browser.get("/dashboard")
        assert response.status_code == 303 and response.headers["location"] == "/dashboard/sign-in?next=/dashboard"


# -- the layout and error pages ---------------------------------------------------------------


async def test_pages_have_the_layout_and_strict_headers(runtime: Runtime, dashboard: httpx.AsyncClient) -> None:
    a = await add_project(runtime, "alpha")
    await add_operator(runtime, "ops@example.com")
    form = await dashboard.get("/dashboard/sign-in")
    assert form.headers["content-security-policy"].startswith("default-src 'none'") and form.headers["cache-control"] == "no-store"
    assert 'autocomplete="current-password"' in form.text and "Sign out" not in form.text
    await sign_in(dashboard, "ops@example.com")
    page = await dashboard.get("/dashboard/audit")
    text = page.text
    assert 'href="#main"' in text and 'id="main"' in text
    for section in ("", "/connections", "/providers", "/webhook", "/keys"):
        assert f'href="/dashboard/projects/{a}{section}"' in text
    assert re.search(r'<a href="/dashboard/audit" aria-current="page">Audit log</a>', text)
    assert text.count('aria-current="page"') == 1
    assert re.search(r'<form method="post" action="/dashboard/sign-out">\s*<input type="hidden" name="csrf_token" value="[^"]{43}">', text)
    assert "<script" not in text and "style=" not in text


async def test_unknown_dashboard_paths_and_bad_input_answer_pages(runtime: Runtime, dashboard: httpx.AsyncClient) -> None:
    missing = await dashboard.get("/dashboard/no-such-page")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html") and "Not found" in missing.text
    wrong_method = await dashboard.get("/dashboard/sign-out")
    assert wrong_method.status_code == 405 and "text/html" in wrong_method.headers["content-type"]
    too_long = await dashboard.post("/dashboard/sign-in", data={"email": "x" * 5000, "password": "p", "csrf_token": "t"})
    assert too_long.status_code == 400 and "Nothing was changed" in too_long.text
    api = await dashboard.get("/v1/nothing")  # the API keeps its JSON errors
    assert api.headers["content-type"] == "application/json"


async def test_nul_characters_are_refused_before_any_query(runtime: Runtime, dashboard: httpx.AsyncClient) -> None:
    await add_operator(runtime, "ops@example.com")
    form = await dashboard.get("/dashboard/sign-in")
    token = CSRF.search(form.text).group(1)  # type: ignore[union-attr]
    refused = await dashboard.post("/dashboard/sign-in", data={"email": "ops\x00@example.com", "password": PASSWORD, "csrf_token": token})
    assert refused.status_code == 400 and "That did not work" in refused.text
    assert (await dashboard.get("/dashboard/sign-in?next=%00")).status_code == 400
    await sign_in(dashboard, "ops@example.com")
    assert (await dashboard.get("/dashboard/audit?before=%00")).status_code == 400
    csrf = await page_csrf(dashboard)
    assert (await dashboard.post("/dashboard/sign-out", data={"csrf_token": csrf, "x": "a\x00b"})).status_code == 400
    assert (await dashboard.get("/dashboard/audit")).status_code == 200  # nothing was done: still signed in
    assert await entries(runtime, audit.SIGN_IN_FAILED) == []


async def test_another_projects_pages_and_forms_are_not_found_by_url(runtime: Runtime, dashboard: httpx.AsyncClient) -> None:
    a, b = await add_project(runtime, "alpha"), await add_project(runtime, "beta")
    await add_operator(runtime, "alpha-ops@example.com", [a])
    await sign_in(dashboard, "alpha-ops@example.com")
    csrf = await page_csrf(dashboard)
    for section in ("", "/connections", "/providers", "/webhook", "/keys"):
        page = await dashboard.get(f"/dashboard/projects/{b}{section}")
        assert page.status_code == 404 and "beta" not in page.text, section
    posted = await dashboard.post(f"/dashboard/projects/{b}/keys", data={"csrf_token": csrf})
    assert posted.status_code == 404
    async with runtime.db.sessions() as session:
        beta = await projects.project_by_name(session, "beta")
        assert await projects.list_keys(session, beta) == []
