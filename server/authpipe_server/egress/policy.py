"""Which addresses Authpipe's outbound calls may reach (`AUTHPIPE_EGRESS`, `AUTHPIPE_EGRESS_ALLOW`).

Every URL Authpipe calls can come from someone outside: a custom provider's endpoints and a
catalog provider's overrides (API-key holders), a DID document's PDS (end users), a webhook URL,
a Facebook paging link (the provider). So the rule is about the *address* a name resolves to, and
the connection is made to the address that was checked (egress.transport), never to a second
lookup of the name (no DNS-rebinding window).

- `public`: public (globally routable) addresses, over https only.
- `loopback`: that, plus 127.0.0.0/8 and ::1 over http or https (development, tests).
- `any`: no address rule; https still required except on loopback.
- The allow list adds hosts (any address they resolve to) and CIDR ranges, https only.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import SplitResult, urlsplit

Mode = Literal["public", "loopback", "any"]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
MAX_URL = 2048


class EgressRefused(ValueError):
    """The policy forbids this URL or address. The message names the rule, never what answered."""


def parse_allow_list(value: str) -> tuple[frozenset[str], tuple[Network, ...]]:
    """`"idp.internal, 10.1.0.0/16"` → ({"idp.internal"}, (10.1.0.0/16,)). ValueError on a bad entry."""
    hosts: set[str] = set()
    networks: list[Network] = []
    for raw in value.split(","):
        entry = raw.strip().lower().rstrip(".")
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
            continue
        except ValueError:
            pass
        labels = entry.split(".")
        if len(entry) > 253 or not all(label and len(label) <= 63 and label.replace("-", "").isalnum() for label in labels):
            raise ValueError(f"{raw.strip()!r} is neither a host name nor a CIDR range")
        hosts.add(entry)
    return frozenset(hosts), tuple(networks)


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries (mapped ::ffff:a.b.c.d, 6to4, Teredo, NAT64)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_loopback(address: IPAddress) -> bool:
    inner = embedded_ipv4(address)
    return (inner or address).is_loopback


def is_public(address: IPAddress) -> bool:
    """Globally routable unicast: not loopback, link-local (169.254.169.254), private, shared
    (100.64/10), multicast, unspecified, reserved, nor any of those inside an IPv6 form."""
    inner = embedded_ipv4(address)
    if inner is not None:
        if not is_public(inner):
            return False
        if isinstance(address, ipaddress.IPv6Address) and (address.ipv4_mapped is not None or address in NAT64):
            return True  # a translated IPv4 address: the IPv4 address is what is reached
    return address.is_global and not (
        address.is_multicast or address.is_unspecified or address.is_reserved or address.is_link_local or address.is_loopback
    )


@dataclass(frozen=True)
class Target:
    """A URL that passed the shape rules: where to connect, and whether in plain text."""

    url: str
    scheme: str
    host: str
    port: int


@dataclass(frozen=True)
class EgressPolicy:
    mode: Mode = "public"
    allow_hosts: frozenset[str] = field(default_factory=frozenset)
    allow_networks: tuple[Network, ...] = ()

    @classmethod
    def build(cls, mode: Mode, allow: str = "") -> "EgressPolicy":
        hosts, networks = parse_allow_list(allow)
        return cls(mode, hosts, networks)

    # -- the URL -------------------------------------------------------------------------------

    def check_url(self, url: str) -> Target:
        """The shape rules: http(s), a host, no user:password@, no control characters, and
        plain http only where loopback may be reached. Raises EgressRefused."""
        if len(url) > MAX_URL or any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url):
            raise EgressRefused("the URL is too long or contains spaces or control characters")
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise EgressRefused("only https:// URLs may be called")
        host = _host(parts)
        if parts.username is not None or parts.password is not None:
            raise EgressRefused("URLs with user:password@ are refused (credentials do not belong in a URL)")
        try:
            explicit = parts.port
        except ValueError:
            explicit = 0
        port = (443 if scheme == "https" else 80) if explicit is None else explicit
        if port == 0:
            raise EgressRefused("the URL's port is not a number from 1 to 65535")
        if scheme == "http" and self.mode == "public":
            raise EgressRefused("only https:// URLs may be called (AUTHPIPE_EGRESS=public)")
        literal = _literal(host)
        if scheme == "http" and literal is not None and not is_loopback(literal):
            raise EgressRefused("plain http:// is allowed only to loopback addresses; use https://")
        if literal is not None:
            self.check_address(host, literal, plaintext=scheme == "http")
        return Target(url, scheme, host, port)

    # -- the address ---------------------------------------------------------------------------

    def allows(self, host: str, address: IPAddress, *, plaintext: bool = False) -> bool:
        if plaintext:  # http: loopback only, and never in `public`
            return self.mode != "public" and is_loopback(address)
        if self.mode == "any" or is_public(address):
            return True
        if self.mode == "loopback" and is_loopback(address):
            return True
        if host.lower().rstrip(".") in self.allow_hosts:
            return True
        return any(address in network for network in self.allow_networks) or any(
            inner in network for inner in [embedded_ipv4(address)] if inner is not None for network in self.allow_networks
        )

    def check_address(self, host: str, address: IPAddress, *, plaintext: bool = False) -> None:
        if not self.allows(host, address, plaintext=plaintext):
            raise EgressRefused(f"{host} is not a public address; AUTHPIPE_EGRESS={self.mode} does not allow calls to it")


def _host(parts: SplitResult) -> str:
    try:
        host = parts.hostname
    except ValueError:
        host = None
    if not host:
        raise EgressRefused("the URL names no host")
    return host


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def parse_address(value: str) -> IPAddress:
    """An address as getaddrinfo gives it (an IPv6 one may carry a %scope)."""
    return ipaddress.ip_address(value.split("%", 1)[0])
