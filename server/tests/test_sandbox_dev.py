"""`authpipe dev` as a process: the port it is given is the port every URL names; a taken port is
one line and a non-zero exit; the Simulate buttons and the webhook inbox over plain HTTP (the
browser tests drive them in Chromium), including what a restart does to them."""

from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.processes import CLI, free_port, running_server

SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


def test_a_taken_port_is_one_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([*CLI, "dev", "--port", str(port)], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines == [f"authpipe: error: port {port} on 127.0.0.1 is in use; pick another: make run PORT={port + 1} (or authpipe dev --port {port + 1})"], result.stderr
    assert "Authpipe sandbox" not in result.stdout  # no banner naming an address it does not serve


def test_the_public_url_follows_the_port(tmp_path: Path) -> None:
    """AUTHPIPE_PORT without AUTHPIPE_PUBLIC_URL: the banner, the pages and the OAuth redirect
    URI all name that port (they used to name 8080)."""
    port = free_port()
    with running_server(["dev"], {"AUTHPIPE_PORT": str(port)}, cwd=tmp_path) as server, httpx.Client(base_url=server.url) as browser:
        assert f"http://127.0.0.1:{port}" in browser.get("/").text
        start = browser.get("/sandbox/try/spotify", follow_redirects=False)
        connect = browser.get(start.headers["location"], follow_redirects=False)
        authorize = urlsplit(connect.headers["location"])
        assert authorize.netloc == f"127.0.0.1:{port}", connect.headers["location"]
        assert parse_qs(authorize.query)["redirect_uri"] == [f"http://127.0.0.1:{port}/oauth/callback"]
    assert f"Open:        http://127.0.0.1:{port}/" in server.output


def connect_spotify(browser: httpx.Client, user: str) -> str:
    """The one-click flow as a browser without JavaScript: approve, follow every redirect."""
    consent = browser.get("/sandbox/try/spotify", follow_redirects=True)
    assert consent.status_code == 200, consent.text
    done = browser.post(str(consent.url), data={"user": user, "decision": "approve"}, follow_redirects=True)
    found = re.search(r'href="([^"]*/sandbox/connected\?connection_id=(conn_[0-9A-Z]{26}))"', done.text)
    assert done.status_code == 200 and found, done.text
    page = browser.get(found.group(1), follow_redirects=True)  # the result page's Continue link
    assert str(page.url).endswith(f"/sandbox/connections/{found.group(2)}"), page.url
    return found.group(2)


def test_a_restarted_sandbox_still_knows_its_grants(tmp_path: Path) -> None:
    """The emulators' state outlives a restart, so a sandbox connection stays healthy; without
    it (the file deleted, or unreadable), Simulate says what happened instead of failing."""
    port = free_port()
    env = {"AUTHPIPE_PORT": str(port)}
    with running_server(["dev"], env, cwd=tmp_path) as server, httpx.Client(base_url=server.url) as browser:
        connection_id = connect_spotify(browser, "ada")
    state = tmp_path / ".authpipe" / "emulators.pickle"
    assert state.exists() and state.stat().st_mode & 0o077 == 0

    with running_server(["dev"], env, cwd=tmp_path) as server, httpx.Client(base_url=server.url) as browser:
        checked = browser.post(f"/sandbox/connections/{connection_id}", data={"action": "check"}, headers=SAME_ORIGIN, follow_redirects=True)
        assert 'id="status">active<' in checked.text, checked.text
        expired = browser.post(f"/sandbox/connections/{connection_id}", data={"action": "expire"}, headers=SAME_ORIGIN, follow_redirects=True)
        assert "The access token expired" in expired.text

    state.write_bytes(b"not a pickle")
    with running_server(["dev"], env, cwd=tmp_path) as server, httpx.Client(base_url=server.url) as browser:
        revoked = browser.post(f"/sandbox/connections/{connection_id}", data={"action": "revoke"}, headers=SAME_ORIGIN, follow_redirects=True)
        assert "does not know this connection&#39;s grant" in revoked.text, revoked.text
        assert 'id="status">active<' in revoked.text  # nothing was changed
    assert (tmp_path / ".authpipe" / "emulators.unreadable").read_bytes() == b"not a pickle"
    assert "could not be read" in server.output


def test_the_inbox_keeps_a_forged_delivery_marked_unverified(tmp_path: Path) -> None:
    port = free_port()
    with running_server(["dev"], {"AUTHPIPE_PORT": str(port)}, cwd=tmp_path) as server, httpx.Client(base_url=server.url) as client:
        forged = client.post(
            "/sandbox/webhooks/receive",
            content=b'{"type":"connection.revoked","data":{}}',
            headers={"webhook-id": "msg_forged", "webhook-timestamp": "1", "webhook-signature": "v1,Zm9yZ2Vk", "content-type": "application/json"},
        )
        assert forged.status_code == 400
        inbox = client.get("/sandbox/webhooks").text
        assert "signature not verified" in inbox and "msg_forged" in inbox
        assert "signature verified<" not in inbox
        assert client.get("/sandbox/webhooks/receive").status_code == 405
