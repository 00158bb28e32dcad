"""`Egress`: the one way out. Every outbound request Authpipe makes goes through `request()`:
the URL checked against the policy, a connection only to a checked address, no redirects
followed, one total deadline over connect + send + the whole answer, and the answer read in a
stream up to a size cap (so a dripping or enormous answer costs at most the deadline and the cap).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpcore
import httpx

from authpipe_server import __version__
from authpipe_server.egress.errors import EgressError, EgressTimeout, EgressUnreachable, ResponseTooLarge
from authpipe_server.egress.policy import EgressPolicy, EgressRefused, parse_address
from authpipe_server.egress.transport import PolicyTransport

USER_AGENT = f"Authpipe/{__version__}"
RESOLVE_DEADLINE = 5.0


class Egress:
    def __init__(self, policy: EgressPolicy, *, deadline: float = 15.0, max_bytes: int = 1024 * 1024) -> None:
        self.policy, self.deadline, self.max_bytes = policy, deadline, max_bytes
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        self._tls = PolicyTransport(policy, plaintext=False, limits=limits)
        self._plain = PolicyTransport(policy, plaintext=True, limits=limits)
        self.client = httpx.AsyncClient(
            mounts={"https://": self._tls, "http://": self._plain},
            # identity: a compressed answer could inflate far past the size cap in one chunk.
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", "Accept-Encoding": "identity"},
            follow_redirects=False,
            trust_env=False,
            # httpx's per-phase timeouts sit under the total deadline (asyncio.timeout below).
            timeout=httpx.Timeout(deadline, connect=min(deadline, 5.0)),
        )

    async def check_resolved(self, url: str) -> None:
        """Refuse a URL up front (configuration time): its shape, and the addresses its host
        resolves to now. The call itself is checked again when it connects."""
        target = self.policy.check_url(url)
        plaintext = target.scheme == "http"
        backend = (self._plain if plaintext else self._tls).backend
        try:
            async with asyncio.timeout(RESOLVE_DEADLINE):
                addresses = await backend.resolve(target.host, target.port)
        except TimeoutError:
            raise EgressRefused(f"cannot resolve {target.host} (no answer in time)") from None
        except httpcore.ConnectError:
            raise EgressRefused(f"cannot resolve {target.host}") from None
        # The first refused address names the rule (check_address raises) unless one is allowed.
        if not any(self.policy.allows(target.host, parse_address(a), plaintext=plaintext) for a in addresses):
            self.policy.check_address(target.host, parse_address(addresses[0]), plaintext=plaintext)

    async def request(
        self,
        method: str,
        url: str,
        *,
        deadline: float | None = None,
        max_bytes: int | None = None,
        truncate: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send and read the whole answer (≤ max_bytes) within `deadline` seconds (at most the
        configured deadline). Any status, 3xx included, is returned as it is. With `truncate`,
        an answer past the cap is cut there instead of refused (when only its status matters).

        Raises EgressRefused (policy), EgressTimeout, EgressUnreachable, ResponseTooLarge.
        """
        self.policy.check_url(url)
        limit = min(max_bytes or self.max_bytes, self.max_bytes)
        total = min(deadline or self.deadline, self.deadline)
        try:
            async with asyncio.timeout(total):
                async with self.client.stream(method, url, **kwargs) as response:
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > limit and not truncate:
                        raise ResponseTooLarge(limit)
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > limit:
                            if not truncate:
                                raise ResponseTooLarge(limit)
                            del body[limit:]
                            break
        except (TimeoutError, httpx.TimeoutException):
            raise EgressTimeout(total) from None
        except (EgressError, EgressRefused):
            raise
        except (httpx.HTTPError, OSError) as exc:
            raise EgressUnreachable(type(exc).__name__) from None
        return httpx.Response(
            response.status_code,
            # raw bytes: a header value outside ASCII (a provider's "²") cannot be encoded back from str
            headers=[(k, v) for k, v in response.headers.raw if k.lower() not in (b"content-encoding", b"content-length", b"transfer-encoding")],
            content=bytes(body),
            request=response.request,
        )

    async def aclose(self) -> None:
        await self.client.aclose()
