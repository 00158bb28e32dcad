"""The authorization-code flow: start (state, PKCE, redirect) and callback (checks, exchange,
account lookup, stored connection). Every failure is a ConnectError and stores nothing."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from authpipe_server.connect.errors import ConnectError
from authpipe_server.connect.pkce import create_code_verifier, create_s256_code_challenge
from authpipe_server.connect.sessions import allows, ensure_usable, find_session, session_completed
from authpipe_server.connect.state import STATE_TTL, consume_state, ensure_state_allowed, verifier_place
from authpipe_server.connections.service import AccountChangeRefused, Owner, SessionAlreadyCompleted, save_grant
from authpipe_server.ids import new_id
from authpipe_server.providers.apps import ProjectProvider, ProviderNotConfigured, ProviderNotFound, load_provider
from authpipe_server.providers.base import Described, Grant, Provider
from authpipe_server.providers.bluesky import BlueskyProvider
from authpipe_server.providers.errors import (
    CredentialsRejected,
    ProviderFailure,
    ProviderMisconfigured,
    ProviderUnavailable,
)
from authpipe_server.providers.http import clean_text
from authpipe_server.providers.oauth2 import OAuth2Provider
from authpipe_server.runtime import Runtime
from authpipe_server.store.models import Connection, ConnectSession, OAuthState
from authpipe_server.store.types import utcnow
from authpipe_server.tokens import new_token, token_hash

CODE_MAX_LENGTH = 4096
log = logging.getLogger(__name__)


@dataclass
class Connected:
    session: ConnectSession
    connection: Connection
    display_name: str
    """The provider's name as people know it ("Acme CRM" for a custom provider `acme-crm`)."""


async def session_provider(runtime: Runtime, token: str | None, provider: str) -> tuple[ConnectSession, ProjectProvider]:
    """The live connect session and the provider it may connect, or a ConnectError."""
    async with runtime.db.sessions() as session:
        connect_session = await find_session(session, token)
    if not allows(connect_session, provider):
        raise ConnectError("provider_not_allowed", f"this connect link does not allow {provider}", 403)
    try:
        project_provider = await load_provider(runtime, connect_session.project_id, provider)
    except ProviderNotFound:
        raise ConnectError("provider_not_found", f"there is no provider named {provider}", 404) from None
    except ProviderNotConfigured:
        raise ConnectError("provider_not_configured", f"{provider} is not set up for this app yet", 409) from None
    return connect_session, project_provider


def requested_scopes(connect_session: ConnectSession, project_provider: ProjectProvider) -> list[str]:
    per_provider = (connect_session.scopes or {}).get(project_provider.spec.name)
    return project_provider.scopes_for(list(per_provider) if per_provider else None)


async def start_authorization(runtime: Runtime, token: str | None, provider: str, browser: str) -> str:
    """Remember a new state (and PKCE verifier, and `browser`: the hash of the cookie of the
    browser starting the flow); return the provider's authorization URL."""
    connect_session, project_provider = await session_provider(runtime, token, provider)
    client = project_provider.provider
    if not isinstance(client, OAuth2Provider):
        raise ConnectError("not_oauth", f"{provider} connects with an app password, not a redirect")
    spec = project_provider.spec
    state, state_id = new_token(), new_id("st")
    verifier = create_code_verifier() if spec.pkce else None
    sealed = (
        await runtime.vault.encrypt(verifier_place(connect_session.project_id, connect_session.tenant_id, state_id), verifier.encode())
        if verifier
        else None
    )
    scopes = requested_scopes(connect_session, project_provider)
    async with runtime.db.writing() as session:
        await ensure_state_allowed(session, connect_session.id)
        session.add(
            OAuthState(
                id=state_id,
                state_hash=token_hash(state),
                session_id=connect_session.id,
                provider=provider,
                issuer=spec.issuer,
                browser_hash=browser,
                code_verifier=sealed,
                scopes=scopes,
                expires_at=min(utcnow() + STATE_TTL, connect_session.expires_at),
            )
        )
    return client.authorization_url(
        state=state,
        redirect_uri=runtime.settings.redirect_uri,
        scopes=scopes,
        code_challenge=create_s256_code_challenge(verifier) if verifier else None,
    )


async def complete_authorization(runtime: Runtime, params: dict[str, str], browser: str | None) -> Connected:
    """The callback: consume the state (only in the browser that started the flow: `browser` is
    the hash of the request's cookie), check the issuer, exchange the code, store the connection.

    Raises ConnectError with `.session` set once the state identified the session, so the
    result page can still tell the opener.
    """
    oauth_state = await consume_state(runtime, params.get("state"), browser)
    async with runtime.db.sessions() as session:
        connect_session = await session.get(ConnectSession, oauth_state.session_id)
    if connect_session is None:
        raise ConnectError("invalid_state", "this sign-in link is not valid; start again from the app")
    try:
        return await _finish(runtime, connect_session, oauth_state, params)
    except ConnectError as exc:
        exc.session = connect_session
        raise


async def _finish(runtime: Runtime, connect_session: ConnectSession, oauth_state: OAuthState, params: dict[str, str]) -> Connected:
    ensure_usable(connect_session)  # before the exchange; save_grant re-checks completion atomically
    if params.get("error"):
        reason = params["error"] if params["error"] in ("access_denied", "invalid_scope", "temporarily_unavailable", "server_error") else "authorization_failed"
        message = "you declined access" if reason == "access_denied" else "the provider could not complete the sign-in"
        raise ConnectError(reason, message)
    _, project_provider = await session_provider_for(runtime, connect_session, oauth_state.provider)
    spec = project_provider.spec
    # RFC 9207 §2.4: "clients MUST compare the iss parameter value with the issuer identifier of
    # the authorization server they sent the authorization request to ... If the value does not
    # match ..., clients MUST reject the authorization response". And a server that advertises
    # the parameter but omits it is refused too. Both before the exchange.
    issuer = params.get("iss")
    if issuer is not None and oauth_state.issuer is None:
        # The server identifies itself but nobody told Authpipe whom to expect: say how to fix it.
        named = clean_text(issuer) or ""
        fix = f"declare \"issuer\": \"{named}\" on this provider (PUT /v1/providers/{spec.name})" if spec.custom else "update Authpipe (its catalog entry for this provider names no issuer)"
        log.warning("%s (project %s) sent \"iss\": \"%s\" at the callback but declares no issuer; %s", spec.name, connect_session.project_id, named, fix)
        raise ConnectError("issuer_not_declared", f"the provider sent \"iss\": \"{named}\" but declares no issuer; the app's developers must {fix}")
    if issuer is not None and issuer != oauth_state.issuer:
        raise ConnectError("issuer_mismatch", "the sign-in answer came from an unexpected server")
    if issuer is None and spec.require_iss:
        raise ConnectError("issuer_missing", "the sign-in answer did not say which server sent it")
    code = params.get("code")
    if not code or len(code) > CODE_MAX_LENGTH:
        raise ConnectError("invalid_request", "the sign-in answer has no valid authorization code")
    verifier: str | None = None
    if oauth_state.code_verifier is not None:
        place = verifier_place(connect_session.project_id, connect_session.tenant_id, oauth_state.id)
        verifier = (await runtime.vault.decrypt(place, oauth_state.code_verifier)).decode()
    elif spec.pkce:
        raise ConnectError("missing_pkce_verifier", "this sign-in cannot be completed safely; start again from the app")
    client = project_provider.provider
    assert isinstance(client, OAuth2Provider)
    try:
        grant = await client.exchange_code(code.removesuffix("#_"), runtime.settings.redirect_uri, verifier)
        described = await client.describe(grant.tokens)
    except ProviderFailure as exc:
        raise _provider_error(exc) from None
    connection = await store_grant(runtime, connect_session, client, grant, described, list(oauth_state.scopes or []))
    return Connected(connect_session, connection, spec.display_name)


async def store_grant(
    runtime: Runtime, connect_session: ConnectSession, client: Provider, grant: Grant, described: Described, scopes: list[str]
) -> Connection:
    """Save the grant as the session's connection, completing the session. A grant that cannot be
    stored (the session completed meanwhile, or another account than the stored one when the
    session refuses that) is revoked at the provider, best effort: nothing would ever use it."""
    owner = Owner(connect_session.project_id, connect_session.tenant_id, connect_session.user_id, client.spec.name)
    try:
        connection, _ = await save_grant(
            runtime, owner, grant, described, scopes, completes=connect_session.id, refuse_account_change=connect_session.account_change == "refuse"
        )
        return connection
    except SessionAlreadyCompleted:
        error = session_completed()
    except AccountChangeRefused:
        error = ConnectError(
            "account_changed", f"this app is connected to another {client.spec.display_name} account; sign in with that account", 409
        )
    try:
        await client.revoke(grant.tokens)
    except ProviderFailure as exc:
        log.warning("could not revoke an unused %s grant: %s", client.spec.name, exc.code)
    error.session = connect_session
    raise error


async def session_provider_for(runtime: Runtime, connect_session: ConnectSession, provider: str) -> tuple[ConnectSession, ProjectProvider]:
    try:
        return connect_session, await load_provider(runtime, connect_session.project_id, provider)
    except (ProviderNotFound, ProviderNotConfigured):
        raise ConnectError("provider_not_configured", f"{provider} is no longer set up for this app", 409) from None


def _provider_error(exc: ProviderFailure) -> ConnectError:
    if isinstance(exc, ProviderUnavailable):
        return ConnectError("provider_unavailable", "the provider is not answering right now; try again in a minute", 502)
    if isinstance(exc, ProviderMisconfigured):
        return ConnectError("provider_misconfigured", "the provider refused this app's credentials; tell the app's developers", 502)
    if isinstance(exc, CredentialsRejected):
        return ConnectError(exc.code, exc.message, 400)
    return ConnectError("token_exchange_failed", "the provider did not complete the sign-in; start again from the app", 502)


async def connect_app_password(runtime: Runtime, token: str | None, provider: str, identifier: str, app_password: str) -> Connected:
    """The app-password form: create a session at the provider, store the connection."""
    connect_session, project_provider = await session_provider(runtime, token, provider)
    client = project_provider.provider
    if not isinstance(client, BlueskyProvider):
        raise ConnectError("not_app_password", f"{provider} connects through its own sign-in page")
    try:
        grant, described = await client.create_session(identifier, app_password)
    except ProviderFailure as exc:
        raise _provider_error(exc) from None
    connection = await store_grant(runtime, connect_session, client, grant, described, list(project_provider.spec.default_scopes))
    return Connected(connect_session, connection, project_provider.spec.display_name)
