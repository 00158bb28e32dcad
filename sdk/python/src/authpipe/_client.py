"""`Authpipe` (blocking, thread-safe) and `AsyncAuthpipe` (asyncio): twins over the same cache
(`_cache.py`) and the same request/answer/retry logic (`_base.py`). Each adds only its kind of
I/O, of waiting (threads or tasks) and of single flight (a `Future` or a shielded task per key)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future
from functools import partial
from time import monotonic
from typing import Any, Self

import httpx

from authpipe._base import (
    BaseClient,
    FlightKey,
    Params,
    connection_path,
    json_body,
    provider_path,
    query,
    validate_credential_args,
)
from authpipe._cache import CacheKey
from authpipe._errors import AuthpipeError
from authpipe._models import (
    Connection,
    ConnectionPage,
    ConnectSession,
    Credential,
    EventPage,
    Provider,
    Webhook,
    parse_connect_session,
    parse_connection,
    parse_connection_page,
    parse_credential,
    parse_event_page,
    parse_provider,
    parse_providers,
    parse_webhook,
)

__all__ = ["AsyncAuthpipe", "Authpipe"]

log = logging.getLogger("authpipe")


class Authpipe(BaseClient):
    """The Authpipe client for blocking code; one instance is meant to be shared by every thread.

    ```python
    ap = Authpipe(secret_key="ap_sk_…", base_url="http://127.0.0.1:8080")  # or AUTHPIPE_SECRET_KEY / AUTHPIPE_URL
    cred = ap.get_credential(provider="spotify", tenant_id="org_acme", user_id="user_123")
    ```

    `timeout` is per HTTP attempt, in seconds (None: none). `retries` extra attempts follow a
    network error, a timeout or a 5xx (never a 4xx), `retry_delay` seconds apart, doubling, with
    jitter. `cache_size` bounds the credential cache (0 disables it); `refresh_ahead` is the
    width in seconds of the refresh-ahead window above `min_ttl`; a credential without
    `expires_at` is served from the cache for `no_expiry_ttl` seconds. `transport` replaces
    httpx's default transport (proxies, instrumentation, tests).
    """

    def __init__(
        self,
        secret_key: str | None = None,
        base_url: str | None = None,
        *,
        cache_size: int = 1000,
        timeout: float | None = 10.0,
        retries: int = 2,
        retry_delay: float = 0.2,
        refresh_ahead: float = 60.0,
        no_expiry_ttl: float = 300.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            secret_key,
            base_url,
            cache_size=cache_size,
            timeout=timeout,
            retries=retries,
            retry_delay=retry_delay,
            refresh_ahead=refresh_ahead,
            no_expiry_ttl=no_expiry_ttl,
        )
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)
        self._flights: dict[FlightKey, Future[Credential]] = {}
        self._flights_lock = threading.Lock()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    # -- credentials ------------------------------------------------------------------------------

    def get_credential(
        self,
        provider: str,
        tenant_id: str,
        user_id: str,
        *,
        min_ttl: float = 60,
        force_refresh: bool = False,
        resource: str | None = None,
    ) -> Credential:
        """The credential of (provider, tenant_id, user_id[, resource]), with more than `min_ttl`
        seconds left.

        Served from memory without I/O while more than `min_ttl + refresh_ahead` seconds remain;
        from memory too inside the refresh-ahead window, while one background thread per key
        fetches the next one; otherwise fetched, one request for however many threads ask at once.
        While the server cannot be reached (no answer, 429, 5xx), a cached credential that has not
        expired is returned instead of the error. `force_refresh` skips the cache and never falls
        back. Raises `ConnectionNotFound` (404), `ConnectionRevoked` (410), `AuthpipeError`.
        """
        if not force_refresh:
            # The hot path, inlined so that a hit costs three dict reads and a clock read: no call,
            # no lock, no tuple key. `CredentialCache.plan` takes the same decision for these
            # entries, and all the others.
            try:
                entry = self._index[provider][tenant_id][user_id if resource is None else (user_id, resource)]
            except KeyError:
                pass
            else:
                now = monotonic()
                if entry.fresh_until - now > min_ttl:
                    entry.last_used = now
                    return entry.credential
        return self._get_credential((provider, tenant_id, user_id, resource), min_ttl, force_refresh)

    def _get_credential(self, key: CacheKey, min_ttl: float, force: bool) -> Credential:
        if not force:
            cached, refresh = self._cache.plan(key, min_ttl)
            if cached is not None:
                if refresh:
                    self._start_background_refresh(key, min_ttl)
                return cached
        validate_credential_args(key, min_ttl)
        return self._fetch_shared(key, min_ttl, force)

    def _fetch_shared(self, key: CacheKey, min_ttl: float, force: bool) -> Credential:
        """Single flight: the first thread fetches, the others wait for its outcome."""
        flight_key: FlightKey = (key, "force" if force else min_ttl)
        with self._flights_lock:
            flight = self._flights.get(flight_key)
            leader = flight is None
            if flight is None:
                flight = self._flights[flight_key] = Future()
        if not leader:
            return flight.result()
        try:
            credential = self._fetch_credential(key, min_ttl, force)
        except BaseException as exc:
            flight.set_exception(exc)
            raise
        else:
            flight.set_result(credential)
            return credential
        finally:
            with self._flights_lock:
                del self._flights[flight_key]

    def _fetch_credential(self, key: CacheKey, min_ttl: float, force: bool) -> Credential:
        try:
            credential = parse_credential(self._request("GET", "/v1/credentials", params=self._credential_params(key, min_ttl, force)))
        except AuthpipeError as exc:
            cached = self._cache.after_error(key, exc, force=force)
            if cached is None:
                raise
            return cached
        self._cache.store(key, credential, force=force)
        return credential

    def _start_background_refresh(self, key: CacheKey, min_ttl: float) -> None:
        thread = threading.Thread(target=self._refresh_in_background, args=(key, min_ttl), name="authpipe-refresh", daemon=True)
        try:
            thread.start()
        except RuntimeError as exc:  # no new threads (interpreter shutting down): let a later call retry
            self._cache.background_finished(key, exc)

    def _refresh_in_background(self, key: CacheKey, min_ttl: float) -> None:
        # Ask for a credential that outlives the whole window: if the server's copy is inside it
        # too, the server refreshes at the provider.
        params = self._credential_params(key, min_ttl + self.refresh_ahead, False)
        outcome: Credential | BaseException
        try:
            outcome = parse_credential(self._request("GET", "/v1/credentials", params=params))
        except Exception as exc:  # noqa: BLE001 -- swallowed: the cached credential is served until it is due
            log.debug("background refresh of %s failed: %r", key[:3], exc)
            outcome = exc
        self._cache.background_finished(key, outcome)

    # -- connect sessions, connections, providers, webhook, events --------------------------------

    def create_connect_session(
        self,
        tenant_id: str,
        user_id: str,
        *,
        allowed_providers: list[str] | None = None,
        scopes: dict[str, list[str]] | None = None,
        origin: str | None = None,
        return_url: str | None = None,
    ) -> ConnectSession:
        """`POST /v1/connect-sessions`: a 30-minute session a browser can connect with."""
        body = json_body(
            {
                "tenant_id": tenant_id,
                "user_id": user_id,
                "allowed_providers": allowed_providers,
                "scopes": scopes,
                "origin": origin,
                "return_url": return_url,
            }
        )
        return parse_connect_session(self._request("POST", "/v1/connect-sessions", json=body))

    def create_connection(self, provider: str, tenant_id: str, user_id: str, **fields: Any) -> Connection:
        """`POST /v1/connections`: `identifier` + `app_password` (Bluesky), or imported
        `access_token` [+ `refresh_token`, `expires_at`]."""
        body = json_body({"provider": provider, "tenant_id": tenant_id, "user_id": user_id, **fields})
        connection = parse_connection(self._request("POST", "/v1/connections", json=body))
        self._cache.evict_connection(connection.id)
        return connection

    def list_connections(
        self,
        *,
        tenant_id: str | None = None,
        user_id: str | None = None,
        provider: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> ConnectionPage:
        """One page of `GET /v1/connections`, newest first; see `iter_connections` for all of them."""
        params = query(
            {"tenant_id": tenant_id, "user_id": user_id, "provider": provider, "status": status, "limit": limit, "cursor": cursor}
        )
        return parse_connection_page(self._request("GET", "/v1/connections", params=params))

    def iter_connections(
        self,
        *,
        tenant_id: str | None = None,
        user_id: str | None = None,
        provider: str | None = None,
        status: str | None = None,
        limit: int | None = None,
    ) -> Iterator[Connection]:
        """Every connection matching the filters, page after page (`limit` per page) via `next_cursor`."""
        cursor: str | None = None
        while True:
            page = self.list_connections(tenant_id=tenant_id, user_id=user_id, provider=provider, status=status, limit=limit, cursor=cursor)
            yield from page.connections
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def get_connection(self, connection_id: str) -> Connection:
        """`GET /v1/connections/{id}`."""
        return parse_connection(self._request("GET", connection_path(connection_id)))

    def delete_connection(self, connection_id: str) -> None:
        """`DELETE /v1/connections/{id}`: revokes at the provider where it can, erases the secrets,
        and drops this client's cached credentials of that connection."""
        self._request("DELETE", connection_path(connection_id))
        self._cache.evict_connection(connection_id)

    def refresh_connection(self, connection_id: str) -> Connection:
        """`POST /v1/connections/{id}/refresh`: refresh at the provider now (the cached credentials
        of that connection are dropped, so the next `get_credential` sees the new token)."""
        connection = parse_connection(self._request("POST", connection_path(connection_id, "/refresh")))
        self._cache.evict_connection(connection_id)
        return connection

    def check_connection(self, connection_id: str) -> Connection:
        """`POST /v1/connections/{id}/check`: a health check now."""
        return parse_connection(self._request("POST", connection_path(connection_id, "/check")))

    def list_providers(self) -> list[Provider]:
        """`GET /v1/providers`: the catalog and this project's custom providers."""
        return parse_providers(self._request("GET", "/v1/providers"))

    def configure_provider(self, name: str, **body: Any) -> Provider:
        """`PUT /v1/providers/{name}` with `body` (`client_id`, `client_secret`, `scopes`,
        `overrides`…, or a custom provider's definition with `auth_mode="oauth2"`)."""
        return parse_provider(self._request("PUT", provider_path(name), json=json_body(body)))

    def set_webhook(self, url: str) -> Webhook:
        """`PUT /v1/webhook`: the endpoint for events, and its signing secret (shown only here)."""
        return parse_webhook(self._request("PUT", "/v1/webhook", json={"url": url}))

    def list_events(
        self, *, connection_id: str | None = None, type: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> EventPage:
        """`GET /v1/events`, newest first."""
        params = query({"connection_id": connection_id, "type": type, "limit": limit, "cursor": cursor})
        return parse_event_page(self._request("GET", "/v1/events", params=params))

    # -- HTTP -------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, params: Params | None = None, json: Any = None) -> Any:
        attempt = 0
        while True:
            try:
                try:
                    response = self._http.request(method, path, params=params, json=json, headers=self._headers)
                except httpx.TransportError as exc:
                    raise self._unreachable(exc) from exc
                return self._answer(response)
            except AuthpipeError as exc:
                delay = self._retry_delay(exc, attempt)
                if delay is None:
                    raise
            time.sleep(delay)
            attempt += 1


class AsyncAuthpipe(BaseClient):
    """The Authpipe client for asyncio, with the options and behaviour of `Authpipe`.

    ```python
    async with AsyncAuthpipe() as ap:
        cred = await ap.get_credential(provider="spotify", tenant_id="org_acme", user_id="user_123")
    ```

    Use one instance per event loop (it holds an `httpx.AsyncClient`). A hit completes without
    awaiting anything; background refreshes are tasks of the running loop.
    """

    def __init__(
        self,
        secret_key: str | None = None,
        base_url: str | None = None,
        *,
        cache_size: int = 1000,
        timeout: float | None = 10.0,
        retries: int = 2,
        retry_delay: float = 0.2,
        refresh_ahead: float = 60.0,
        no_expiry_ttl: float = 300.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            secret_key,
            base_url,
            cache_size=cache_size,
            timeout=timeout,
            retries=retries,
            retry_delay=retry_delay,
            refresh_ahead=refresh_ahead,
            no_expiry_ttl=no_expiry_ttl,
        )
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, transport=transport)
        self._flights: dict[FlightKey, asyncio.Task[Credential]] = {}
        self._background_tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancel background refreshes and close the HTTP connection pool."""
        for task in list(self._background_tasks):
            task.cancel()
        await asyncio.gather(*self._background_tasks, return_exceptions=True)
        await self._http.aclose()

    # -- credentials ------------------------------------------------------------------------------

    async def get_credential(
        self,
        provider: str,
        tenant_id: str,
        user_id: str,
        *,
        min_ttl: float = 60,
        force_refresh: bool = False,
        resource: str | None = None,
    ) -> Credential:
        """As `Authpipe.get_credential`; concurrent tasks asking for one key share one request."""
        key = (provider, tenant_id, user_id, resource)
        if not force_refresh:
            cached, refresh = self._cache.plan(key, min_ttl)
            if cached is not None:
                if refresh:
                    self._start_background_refresh(key, min_ttl)
                return cached
        validate_credential_args(key, min_ttl)
        return await self._fetch_shared(key, min_ttl, force_refresh)

    async def _fetch_shared(self, key: CacheKey, min_ttl: float, force: bool) -> Credential:
        """Single flight: one task fetches; every caller awaits it shielded, so a caller's
        cancellation does not cancel the request the others wait for."""
        flight_key: FlightKey = (key, "force" if force else min_ttl)
        task = self._flights.get(flight_key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._fetch_credential(key, min_ttl, force))
            self._flights[flight_key] = task
            task.add_done_callback(partial(self._flight_done, flight_key))
        return await asyncio.shield(task)

    def _flight_done(self, flight_key: FlightKey, task: asyncio.Task[Credential]) -> None:
        if self._flights.get(flight_key) is task:
            del self._flights[flight_key]
        if not task.cancelled():
            task.exception()  # retrieved, even when every caller was cancelled: no "never retrieved" warning

    async def _fetch_credential(self, key: CacheKey, min_ttl: float, force: bool) -> Credential:
        try:
            credential = parse_credential(
                await self._request("GET", "/v1/credentials", params=self._credential_params(key, min_ttl, force))
            )
        except AuthpipeError as exc:
            cached = self._cache.after_error(key, exc, force=force)
            if cached is None:
                raise
            return cached
        self._cache.store(key, credential, force=force)
        return credential

    def _start_background_refresh(self, key: CacheKey, min_ttl: float) -> None:
        task = asyncio.get_running_loop().create_task(self._refresh_in_background(key, min_ttl))
        self._background_tasks.add(task)
        task.add_done_callback(self._background_tasks.discard)

    async def _refresh_in_background(self, key: CacheKey, min_ttl: float) -> None:
        # As in `Authpipe._refresh_in_background`: ask for a credential that outlives the window.
        params = self._credential_params(key, min_ttl + self.refresh_ahead, False)
        outcome: Credential | BaseException
        try:
            outcome = parse_credential(await self._request("GET", "/v1/credentials", params=params))
        except Exception as exc:  # noqa: BLE001 -- swallowed: the cached credential is served until it is due
            log.debug("background refresh of %s failed: %r", key[:3], exc)
            outcome = exc
        except BaseException as exc:  # cancelled (aclose): release the key, then let it propagate
            self._cache.background_finished(key, exc)
            raise
        self._cache.background_finished(key, outcome)

    # -- connect sessions, connections, providers, webhook, events --------------------------------

    async def create_connect_session(
        self,
        tenant_id: str,
        user_id: str,
        *,
        allowed_providers: list[str] | None = None,
        scopes: dict[str, list[str]] | None = None,
        origin: str | None = None,
        return_url: str | None = None,
    ) -> ConnectSession:
        """`POST /v1/connect-sessions`: a 30-minute session a browser can connect with."""
        body = json_body(
            {
                "tenant_id": tenant_id,
                "user_id": user_id,
                "allowed_providers": allowed_providers,
                "scopes": scopes,
                "origin": origin,
                "return_url": return_url,
            }
        )
        return parse_connect_session(await self._request("POST", "/v1/connect-sessions", json=body))

    async def create_connection(self, provider: str, tenant_id: str, user_id: str, **fields: Any) -> Connection:
        """`POST /v1/connections`: `identifier` + `app_password` (Bluesky), or imported
        `access_token` [+ `refresh_token`, `expires_at`]."""
        body = json_body({"provider": provider, "tenant_id": tenant_id, "user_id": user_id, **fields})
        connection = parse_connection(await self._request("POST", "/v1/connections", json=body))
        self._cache.evict_connection(connection.id)
        return connection

    async def list_connections(
        self,
        *,
        tenant_id: str | None = None,
        user_id: str | None = None,
        provider: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> ConnectionPage:
        """One page of `GET /v1/connections`, newest first; see `iter_connections` for all of them."""
        params = query(
            {"tenant_id": tenant_id, "user_id": user_id, "provider": provider, "status": status, "limit": limit, "cursor": cursor}
        )
        return parse_connection_page(await self._request("GET", "/v1/connections", params=params))

    async def iter_connections(
        self,
        *,
        tenant_id: str | None = None,
        user_id: str | None = None,
        provider: str | None = None,
        status: str | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[Connection]:
        """Every connection matching the filters, page after page (`limit` per page) via `next_cursor`."""
        cursor: str | None = None
        while True:
            page = await self.list_connections(
                tenant_id=tenant_id, user_id=user_id, provider=provider, status=status, limit=limit, cursor=cursor
            )
            for connection in page.connections:
                yield connection
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def get_connection(self, connection_id: str) -> Connection:
        """`GET /v1/connections/{id}`."""
        return parse_connection(await self._request("GET", connection_path(connection_id)))

    async def delete_connection(self, connection_id: str) -> None:
        """`DELETE /v1/connections/{id}`; drops this client's cached credentials of that connection."""
        await self._request("DELETE", connection_path(connection_id))
        self._cache.evict_connection(connection_id)

    async def refresh_connection(self, connection_id: str) -> Connection:
        """`POST /v1/connections/{id}/refresh`; drops this client's cached credentials of that connection."""
        connection = parse_connection(await self._request("POST", connection_path(connection_id, "/refresh")))
        self._cache.evict_connection(connection_id)
        return connection

    async def check_connection(self, connection_id: str) -> Connection:
        """`POST /v1/connections/{id}/check`: a health check now."""
        return parse_connection(await self._request("POST", connection_path(connection_id, "/check")))

    async def list_providers(self) -> list[Provider]:
        """`GET /v1/providers`: the catalog and this project's custom providers."""
        return parse_providers(await self._request("GET", "/v1/providers"))

    async def configure_provider(self, name: str, **body: Any) -> Provider:
        """`PUT /v1/providers/{name}` with `body`."""
        return parse_provider(await self._request("PUT", provider_path(name), json=json_body(body)))

    async def set_webhook(self, url: str) -> Webhook:
        """`PUT /v1/webhook`: the endpoint for events, and its signing secret (shown only here)."""
        return parse_webhook(await self._request("PUT", "/v1/webhook", json={"url": url}))

    async def list_events(
        self, *, connection_id: str | None = None, type: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> EventPage:
        """`GET /v1/events`, newest first."""
        params = query({"connection_id": connection_id, "type": type, "limit": limit, "cursor": cursor})
        return parse_event_page(await self._request("GET", "/v1/events", params=params))

    # -- HTTP -------------------------------------------------------------------------------------

    async def _request(self, method: str, path: str, *, params: Params | None = None, json: Any = None) -> Any:
        attempt = 0
        while True:
            try:
                try:
                    response = await self._http.request(method, path, params=params, json=json, headers=self._headers)
                except httpx.TransportError as exc:
                    raise self._unreachable(exc) from exc
                return self._answer(response)
            except AuthpipeError as exc:
                delay = self._retry_delay(exc, attempt)
                if delay is None:
                    raise
            await asyncio.sleep(delay)
            attempt += 1
