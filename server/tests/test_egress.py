"""The egress policy: which addresses outbound calls may reach, the connection made only to a
checked address, no redirects followed, a total deadline and a size cap. Over real sockets:
hostile stand-in servers on loopback (tests.hostile)."""

from __future__ import annotations

import ipaddress
import resource
import time
from pathlib import Path

import pytest

from authpipe_server.egress import Egress, EgressPolicy, EgressRefused, EgressTimeout, ResponseTooLarge
from authpipe_server.egress.policy import is_public, parse_allow_list
from tests.hostile import HostileServer, answer, drip, enormous, redirect, tls_pair

REFUSED_EVERYWHERE_BUT_ANY = [
    "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1",
    "255.255.255.255", "fe80::1", "fc00::1", "ff02::1", "::", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
    "2002:a9fe:a9fe::1", "64:ff9b::a9fe:a9fe", "198.18.0.1",
]
LOOPBACK = ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::1"]
PUBLIC = ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", REFUSED_EVERYWHERE_BUT_ANY + LOOPBACK)
def test_public_mode_refuses_internal_addresses(address: str) -> None:
    policy = EgressPolicy("public")
    assert not policy.allows("h.example", ipaddress.ip_address(address))
    assert EgressPolicy("any").allows("h.example", ipaddress.ip_address(address))


@pytest.mark.parametrize("address", LOOPBACK)
def test_loopback_mode_adds_loopback_only(address: str) -> None:
    policy = EgressPolicy("loopback")
    assert policy.allows("h", ipaddress.ip_address(address))
    assert policy.allows("h", ipaddress.ip_address(address), plaintext=True)


@pytest.mark.parametrize("address", REFUSED_EVERYWHERE_BUT_ANY)
def test_loopback_mode_still_refuses_the_rest(address: str) -> None:
    assert not EgressPolicy("loopback").allows("h", ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_over_tls_only(address: str) -> None:
    policy = EgressPolicy("public")
    assert is_public(ipaddress.ip_address(address))
    assert policy.allows("h", ipaddress.ip_address(address))
    assert not policy.allows("h", ipaddress.ip_address(address), plaintext=True)
    assert not EgressPolicy("any").allows("h", ipaddress.ip_address(address), plaintext=True)  # http: loopback only


def test_allow_list_hosts_and_ranges() -> None:
    policy = EgressPolicy.build("public", " idp.internal. , 10.1.0.0/16 ")
    assert policy.allows("IDP.internal", ipaddress.ip_address("10.9.9.9"))
    assert policy.allows("other", ipaddress.ip_address("10.1.2.3"))
    assert policy.allows("other", ipaddress.ip_address("::ffff:10.1.2.3"))
    assert not policy.allows("other", ipaddress.ip_address("10.2.0.1"))
    assert not policy.allows("idp.internal", ipaddress.ip_address("10.9.9.9"), plaintext=True)
    with pytest.raises(ValueError, match="neither a host name nor a CIDR"):
        parse_allow_list("good.example, bad host!")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/x", "only https"),
        ("file:///etc/passwd", "only https"),
        ("gopher://example.com", "only https"),
        ("http://example.com/", "only https"),
        ("https://user:pass@example.com/", "user:password"),
        ("https://:@example.com/", "user:password"),
        ("https://example.com:0/", "port"),
        ("https://example.com:99999/", "port"),
        ("https:///path", "no host"),
        ("https://exa mple.com/", "control characters"),
        ("https://169.254.169.254/latest/meta-data/", "not a public address"),
        ("https://[::ffff:127.0.0.1]/", "not a public address"),
        ("https://10.0.0.1/", "not a public address"),
    ],
)
def test_url_rules(url: str, reason: str) -> None:
    with pytest.raises(EgressRefused, match=reason):
        EgressPolicy("public").check_url(url)


def test_plain_http_only_to_loopback() -> None:
    EgressPolicy("loopback").check_url("http://127.0.0.1:8080/x")
    with pytest.raises(EgressRefused, match="loopback"):
        EgressPolicy("any").check_url("http://10.0.0.1/")
    EgressPolicy("any").check_url("https://10.0.0.1/")


# -- over real sockets ---------------------------------------------------------------------------


async def test_public_mode_never_connects_to_loopback_however_it_is_named() -> None:
    egress = Egress(EgressPolicy("public"), deadline=5)
    with HostileServer(answer(200, b'{"secret": "internal"}')) as server:
        for host in ("127.0.0.1", "localhost", "2130706433", "127.1", "[::ffff:127.0.0.1]"):
            with pytest.raises(EgressRefused):
                await egress.request("GET", f"https://{host}:{server.port}/")
        assert server.accepted == 0
    await egress.aclose()


async def test_a_name_resolving_to_loopback_is_refused_at_connect_time() -> None:
    """`localhost` passes the URL rules (it is a name); the address it resolves to is checked
    when connecting, and the refusal says only that it is refused (nothing about what listens)."""
    egress = Egress(EgressPolicy("public"), deadline=5)
    with HostileServer(answer(200)) as open_port:
        messages = set()
        for port in (open_port.port, 1):  # an open port, and one where nothing listens
            with pytest.raises(EgressRefused) as refused:
                await egress.request("GET", f"https://localhost:{port}/")
            messages.add(str(refused.value))
        assert messages == {"localhost is refused: AUTHPIPE_EGRESS=public does not allow its address"}
        assert open_port.accepted == 0
    await egress.aclose()


async def test_allow_list_opens_a_host_over_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    context, ca_file = tls_pair(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", ca_file)
    with HostileServer(answer(200, b'{"ok": true}'), tls=context) as server:
        allowed = Egress(EgressPolicy.build("public", "localhost"), deadline=5)
        response = await allowed.request("GET", server.url("localhost") + "/x")
        assert response.json() == {"ok": True}
        by_range = Egress(EgressPolicy.build("public", "127.0.0.0/8"), deadline=5)
        assert (await by_range.request("GET", server.url("localhost") + "/x")).status_code == 200
        closed = Egress(EgressPolicy("public"), deadline=5)
        with pytest.raises(EgressRefused):
            await closed.request("GET", server.url("localhost") + "/x")
        assert server.accepted == 2
        for egress in (allowed, by_range, closed):
            await egress.aclose()


async def test_redirects_are_not_followed() -> None:
    egress = Egress(EgressPolicy("loopback"), deadline=5)
    with HostileServer(answer(200, b'{"internal": true}')) as elsewhere, HostileServer(redirect(elsewhere.url() + "/x")) as server:
        response = await egress.request("GET", server.url() + "/token")
        assert response.status_code == 302
        assert elsewhere.accepted == 0
    await egress.aclose()


async def test_a_dripping_answer_is_cut_at_the_total_deadline() -> None:
    egress = Egress(EgressPolicy("loopback"), deadline=2)
    with HostileServer(drip(seconds=30)) as server:
        started = time.monotonic()
        with pytest.raises(EgressTimeout, match="within 2 s"):
            await egress.request("GET", server.url() + "/token")
        assert time.monotonic() - started < 10  # per-read timeouts alone would wait ~30 s
    await egress.aclose()


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("declared", [True, False])
async def test_an_enormous_answer_is_refused_without_reading_it(declared: bool) -> None:
    egress = Egress(EgressPolicy("loopback"), deadline=10, max_bytes=1024 * 1024)
    before = peak_rss_mib()
    with HostileServer(enormous(300 * 1024 * 1024, declared=declared)) as server:
        with pytest.raises(ResponseTooLarge, match="larger than 1048576 bytes"):
            await egress.request("GET", server.url() + "/me")
    assert peak_rss_mib() - before < 64  # nowhere near the 300 MB sent
    await egress.aclose()


async def test_truncate_keeps_the_status_of_a_long_answer() -> None:
    egress = Egress(EgressPolicy("loopback"), deadline=10)
    with HostileServer(enormous(5 * 1024 * 1024, declared=False)) as server:
        response = await egress.request("POST", server.url() + "/hook", max_bytes=4096, truncate=True)
    assert response.status_code == 200 and len(response.content) == 4096
    await egress.aclose()
