"""End-to-end fixtures: Authpipe and the provider emulators as REAL servers on loopback, talked
to over HTTP exactly as an application and a browser would."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from authpipe_server.api.app import create_app
from authpipe_server.config import load_settings
from authpipe_server.emulators import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, serve_in_thread
from authpipe_server.sandbox.providers import EMULATOR_OF, FACTORIES, overrides
from tests.conftest import make_project, new_master_key


EMULATOR_APPS: dict[str, Any] = {}
"""The running emulator apps, for the rare test that must change a user's data directly."""


@pytest.fixture(scope="module")
def emulators() -> Iterator[dict[str, str]]:
    """Every emulator as its own real server: emulator name → base URL."""
    EMULATOR_APPS.update({name: FACTORIES[name]() for name in ("spotify", "facebook", "buffer")})

    def bluesky_app(url: str) -> Any:
        EMULATOR_APPS["bluesky"] = FACTORIES["bluesky"](base_url=url)
        return EMULATOR_APPS["bluesky"]

    with serve_in_thread(EMULATOR_APPS["spotify"]) as spotify, serve_in_thread(EMULATOR_APPS["facebook"]) as facebook, serve_in_thread(
        EMULATOR_APPS["buffer"]
    ) as buffer, serve_in_thread(app_factory=bluesky_app) as bluesky:
        yield {"spotify": spotify, "facebook": facebook, "buffer": buffer, "bluesky": bluesky}


@pytest.fixture(autouse=True)
def fresh_emulators(emulators: dict[str, str]) -> None:
    for url in emulators.values():
        httpx.post(f"{url}/_control/reset").raise_for_status()


@dataclass
class Authpipe:
    """A running Authpipe server, its project and secret key, and an API client."""

    url: str
    project_id: str
    secret: str
    emulators: dict[str, str]
    db_path: str
    api: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.api = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.secret}"}, timeout=30)

    def configure(self, provider: str, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"overrides": overrides(provider, self.emulators[EMULATOR_OF[provider]])}
        if provider != "bluesky":
            body |= {"client_id": SANDBOX_CLIENT_ID, "client_secret": SANDBOX_CLIENT_SECRET}
        response = self.api.put(f"/v1/providers/{provider}", json=body | extra)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def session(self, **body: Any) -> dict[str, Any]:
        payload = {"tenant_id": "org_acme", "user_id": "user_123", "origin": "https://app.example.com"} | body
        response = self.api.post("/v1/connect-sessions", json=payload)
        assert response.status_code == 201, response.text
        return dict(response.json())


@pytest.fixture
def authpipe_env() -> dict[str, str]:
    """Extra settings for the server; background workers are off unless a test turns them on."""
    return {"AUTHPIPE_WORKERS": "off"}


@pytest.fixture
def authpipe(emulators: dict[str, str], sqlite_url: str, authpipe_env: dict[str, str]) -> Iterator[Authpipe]:
    env = {"AUTHPIPE_DATABASE_URL": sqlite_url, "AUTHPIPE_MASTER_KEY": new_master_key(), "AUTHPIPE_EGRESS": "loopback", **authpipe_env}

    project_id, secret = make_project(env, "e2e")
    with serve_in_thread(app_factory=lambda url: create_app(load_settings(env | {"AUTHPIPE_PUBLIC_URL": url}), auth_cache_ttl=0.0001)) as url:
        yield Authpipe(url, project_id, secret, emulators, sqlite_url.removeprefix("sqlite:///"))


class FormParser(HTMLParser):
    """The first form on a page: its action and its fields (what a browser would submit)."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.checked: dict[str, list[str]] = {}
        self.in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.in_form, self.action = True, values.get("action", "")
        elif tag == "input" and self.in_form and values.get("name") and values.get("type") not in ("checkbox", "submit"):
            self.fields[values["name"]] = values.get("value", "")
        elif tag == "input" and self.in_form and values.get("type") == "checkbox" and "checked" in values:
            self.checked.setdefault(values["name"], []).append(values.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.in_form = False


def result_of(page: str) -> dict[str, Any]:
    """The outcome a result page would post to its opener."""
    import json

    match = re.search(r'<script type="application/json" id="authpipe-result">(.*?)</script>', page, re.S)
    assert match, page
    return dict(json.loads(match.group(1)))


def new_browser() -> httpx.Client:
    """One simulated browser: a client with its own cookie jar. Authpipe binds a connect flow to
    the browser that started it (a cookie), so a flow must run in one of these from start to end."""
    return httpx.Client(timeout=30)


@pytest.fixture
def browser() -> Iterator[httpx.Client]:
    with new_browser() as client:
        yield client


def consent(browser: httpx.Client, authorize_url: str, user: str | None = None, decision: str = "approve") -> str:
    """Act as the user on the emulator's consent page; return where the provider redirects."""
    page = browser.get(authorize_url)
    assert page.status_code == 200, page.text
    form = FormParser()
    form.feed(page.text)
    data: dict[str, Any] = dict(form.fields) | dict(form.checked) | {"decision": decision}
    if user:
        data["user"] = user
    answer = browser.post(authorize_url, data=data)
    assert answer.status_code in (302, 303), answer.text
    return answer.headers["location"]


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def emulator(authpipe: Authpipe, provider: str) -> str:
    return authpipe.emulators[EMULATOR_OF[provider]]


def control(authpipe: Authpipe, provider: str, path: str, method: str = "POST", **body: Any) -> Any:
    response = httpx.request(method, f"{emulator(authpipe, provider)}/_control/{path}", json=body or None)
    assert response.status_code < 300, response.text
    return response.json()


def connect(authpipe: Authpipe, provider: str, user: str | None = None, **session: Any) -> dict[str, Any]:
    """A whole browser flow (as in test_connect_providers) in a fresh browser; returns the stored
    connection."""
    created = authpipe.session(**session)
    with new_browser() as client:
        start = client.get(f"{authpipe.url}/connect/{provider}", params={"session": created["token"]})
        assert start.status_code == 302, start.text
        outcome = result_of(client.get(consent(client, start.headers["location"], user=user)).text)
    assert outcome["message"]["ok"] is True, outcome
    return dict(outcome["message"]["connection"])
