"""The connection half of the egress policy: resolve the host, check every address, connect to
an address that was checked.

httpcore lets a connection pool take its own network backend; ours resolves the name once,
refuses what the policy refuses, and hands httpcore's default backend the checked IP address.
TLS still verifies the certificate against the *name* (httpcore passes the URL's host as
server_hostname), so connecting by address changes nothing for certificate checks. Written here
because no maintained library does this for httpx (advocate and its kin wrap `requests` only).
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import typing

import certifi
import httpcore
import httpx

from authpipe_server.egress.policy import EgressPolicy, EgressRefused, parse_address


class PolicyBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, policy: EgressPolicy, *, plaintext: bool) -> None:
        self.policy, self.plaintext = policy, plaintext
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        last: Exception | None = None
        for address in await self.allowed_addresses(host, port):
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def allowed_addresses(self, host: str, port: int) -> list[str]:
        """The addresses `host` resolves to that the policy allows; EgressRefused when none is
        (httpcore.ConnectError when the name does not resolve)."""
        allowed = [a for a in await self.resolve(host, port) if self.policy.allows(host, parse_address(a), plaintext=self.plaintext)]
        if not allowed:
            rule = "plain http:// reaches only loopback addresses" if self.plaintext else f"AUTHPIPE_EGRESS={self.policy.mode} does not allow its address"
            raise EgressRefused(f"{host} is refused: {rule}")
        return allowed

    async def resolve(self, host: str, port: int) -> list[str]:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}") from exc
        seen: dict[str, None] = {}
        for _family, _type, _proto, _name, sockaddr in infos:
            seen.setdefault(str(sockaddr[0]), None)
        return list(seen)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise EgressRefused("unix sockets are not reachable through the egress policy")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def ssl_context() -> ssl.SSLContext:
    """certifi's roots, or the bundle in SSL_CERT_FILE (the OpenSSL convention) when set: how an
    operator trusts a private CA (an internal identity provider), and how the tests trust theirs."""
    cafile = os.environ.get("SSL_CERT_FILE") or certifi.where()
    return ssl.create_default_context(cafile=cafile)


class PolicyTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a pool whose connections go through `PolicyBackend`."""

    def __init__(self, policy: EgressPolicy, *, plaintext: bool, limits: httpx.Limits) -> None:
        super().__init__(limits=limits, trust_env=False)
        self.backend = PolicyBackend(policy, plaintext=plaintext)
        # httpx builds its pool without a network_backend argument; rebuild it with ours.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=self.backend,
        )
