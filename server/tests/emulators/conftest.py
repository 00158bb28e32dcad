"""One real server (and one httpx client) per emulator for the session, the emulator reset before
every test that uses it; tests talk to it over HTTP, as Authpipe will."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from authpipe_server.emulators import bluesky, buffer, facebook, serve_in_thread, spotify


class Emulator:
    """An httpx client on one emulator, with shortcuts for its control API and consent form."""

    CALLBACK = "http://127.0.0.1:8080/oauth/callback"

    @staticmethod
    def pkce_pair() -> tuple[str, str]:
        """(verifier, S256 challenge) as RFC 7636 makes them: 32 random bytes, base64url."""
        verifier = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        return verifier, challenge

    @staticmethod
    def query_of(location: str) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}

    def __init__(self, base_url: str, timeout: float = 5.0) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=timeout, follow_redirects=False)

    def control(self, method: str, path: str, body: Any = None, status: int | None = None) -> Any:
        response = self.http.request(method, f"/_control{path}", json=body)
        expected = status or (201 if method == "POST" and path in ("/users", "/apps", "/faults") else 200)
        assert response.status_code == expected, response.text
        return response.json()

    def settings(self, **changes: Any) -> dict[str, Any]:
        return self.control("PATCH", "/settings", changes)

    def fault(self, mode: str, **fields: Any) -> dict[str, Any]:
        return self.control("POST", "/faults", {"mode": mode, **fields})

    def advance(self, seconds: float) -> None:
        self.control("POST", "/time", {"advance": seconds})

    def counts(self) -> dict[str, int]:
        return self.control("GET", "/counts")

    def register_app(self, client_id: str, secret: str | None, redirect_uri: str = CALLBACK) -> None:
        body = {
            "client_id": client_id,
            "client_secret": secret,
            "redirect_uris": [redirect_uri],
            "name": f"App {client_id}",
        }
        self.control("POST", "/apps", body)

    def consent(
        self,
        path: str,
        params: dict[str, str],
        *,
        user: str,
        decision: str = "approve",
        extra: dict[str, Any] | None = None,
    ) -> dict[str, str]:
        """Loads the consent page, posts the decision as its form does, returns the callback query."""
        page = self.http.get(path, params=params)
        assert page.status_code == 200, page.text
        assert 'name="user"' in page.text and 'value="approve"' in page.text and 'value="deny"' in page.text
        response = self.http.post(path, params=params, data={"user": user, "decision": decision, **(extra or {})})
        assert response.status_code == 302, response.text
        return self.query_of(response.headers["location"])

    def close(self) -> None:
        self.http.close()


def _served(app: Any) -> Iterator[Emulator]:
    with serve_in_thread(app) as base_url:
        emulator = Emulator(base_url)
        yield emulator
        emulator.close()


def _fresh(emulator: Emulator) -> Emulator:
    emulator.control("POST", "/reset")
    return emulator


@pytest.fixture(scope="session")
def _spotify() -> Iterator[Emulator]:
    yield from _served(spotify.create_app())


@pytest.fixture(scope="session")
def _facebook() -> Iterator[Emulator]:
    yield from _served(facebook.create_app())


@pytest.fixture(scope="session")
def _buffer() -> Iterator[Emulator]:
    yield from _served(buffer.create_app())


@pytest.fixture(scope="session")
def _bluesky() -> Iterator[Emulator]:
    yield from _served(bluesky.create_app())


@pytest.fixture
def spotify_emu(_spotify: Emulator) -> Emulator:
    return _fresh(_spotify)


@pytest.fixture
def facebook_emu(_facebook: Emulator) -> Emulator:
    return _fresh(_facebook)


@pytest.fixture
def buffer_emu(_buffer: Emulator) -> Emulator:
    return _fresh(_buffer)


@pytest.fixture
def bluesky_emu(_bluesky: Emulator) -> Emulator:
    return _fresh(_bluesky)
