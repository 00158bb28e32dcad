"""Example requests and answers for the API reference (`/docs`, `/openapi.json`).

One tenant and user everywhere (`org_acme`, `user_123`), Spotify as the provider. Every secret is
visibly fake: the documented prefixes (`ap_cs_`, `whsec_`) followed by EXAMPLE text, never
anything shaped like a real key. tests/test_openapi_docs.py validates each example against the
schema it illustrates and compares the main ones with what the running app answers, so they
cannot drift from the code.
"""

from __future__ import annotations

from typing import Any

TENANT_ID = "org_acme"
USER_ID = "user_123"
PROVIDER = "spotify"
CONNECTION_ID = "conn_01JD8X4T6QW3E5R7Y9B2N4M6P8"
OLDER_CONNECTION_ID = "conn_01JD8W2M5K7P9R1T3V5X7Z9B1D"
EVENT_ID = "evt_01JD8X5A2B3C4D5E6F7G8H9J0K"
OLDER_EVENT_ID = "evt_01JD8X4V0R2T4W6Y8A0C2E4G6J"
CONNECT_SESSION_TOKEN = "ap_cs_EXAMPLE0connect0session0token0EXAMPLE00"
WEBHOOK_SECRET = "whsec_EXAMPLE0signing0secret0EXAMPLE0signing00="


def named(**examples: tuple[str, Any]) -> dict[str, dict[str, Any]]:
    """OpenAPI's named examples (`openapi_examples=`): key → (summary, value)."""
    return {key: {"summary": summary, "value": value} for key, (summary, value) in examples.items()}


def success(description: str, example: Any, model: type | None = None) -> dict[str, Any]:
    """One success response's declaration: its description, JSON example and (for routes whose
    code returns a plain dict) the model that documents its shape."""
    declared: dict[str, Any] = {"description": description, "content": {"application/json": {"example": example}}}
    return declared | ({"model": model} if model is not None else {})


# -- connections ------------------------------------------------------------------------------

CONNECTION: dict[str, Any] = {
    "id": CONNECTION_ID,
    "provider": PROVIDER,
    "tenant_id": TENANT_ID,
    "user_id": USER_ID,
    "status": "active",
    "account": {"id": "31l7zqexample", "name": "Ada Lovelace"},
    "resources": [],
    "scopes": ["user-read-email", "playlist-read-private"],
    "expires_at": "2026-11-30T13:00:00Z",
    "created_at": "2026-11-30T12:00:00Z",
    "last_refreshed_at": "2026-11-30T12:00:00Z",
    "last_checked_at": "2026-11-30T12:05:00Z",
    "last_error": None,
}

CHECKED_CONNECTION: dict[str, Any] = CONNECTION | {
    "last_checked_at": "2026-11-30T12:30:00Z",
}

REFRESHED_CONNECTION: dict[str, Any] = CONNECTION | {
    "expires_at": "2026-11-30T13:30:00Z",
    "last_refreshed_at": "2026-11-30T12:30:00Z",
}

BLUESKY_CONNECTION: dict[str, Any] = CONNECTION | {
    "id": OLDER_CONNECTION_ID,
    "provider": "bluesky",
    "account": {"id": "did:plc:ewvi7nxzyoun6zhxrhs64oiz", "name": "ada.bsky.social"},
    "scopes": ["com.atproto.appPass"],
    "expires_at": "2026-11-30T14:00:00Z",
    "last_refreshed_at": None,
    "last_checked_at": None,
}

ERRORED_CONNECTION: dict[str, Any] = CONNECTION | {
    "id": OLDER_CONNECTION_ID,
    "user_id": "user_456",
    "status": "error",
    "expires_at": "2026-11-30T11:00:00Z",
    "last_error": {"code": "provider_unavailable", "message": "the provider answered 503", "at": "2026-11-30T11:02:00Z"},
}

CONNECTION_LIST: dict[str, Any] = {"connections": [CONNECTION, ERRORED_CONNECTION], "next_cursor": None}

NEW_CONNECTION_BODIES = named(
    app_password=(
        "Bluesky with an app password",
        {"provider": "bluesky", "tenant_id": TENANT_ID, "user_id": USER_ID, "identifier": "ada.bsky.social", "app_password": "abcd-efgh-ijkl-mnop"},
    ),
    imported=(
        "Import OAuth tokens obtained elsewhere",
        {
            "provider": PROVIDER,
            "tenant_id": TENANT_ID,
            "user_id": USER_ID,
            "access_token": "EXAMPLE-spotify-access-token",
            "refresh_token": "EXAMPLE-spotify-refresh-token",
            "expires_at": "2030-11-30T13:00:00Z",
        },
    ),
)

# -- credentials ------------------------------------------------------------------------------

CREDENTIAL: dict[str, Any] = {
    "credential": "EXAMPLE-spotify-access-token",
    "token_type": "bearer",
    "expires_at": "2026-11-30T13:00:00Z",
    "connection_id": CONNECTION_ID,
    "provider": PROVIDER,
    "scopes": ["user-read-email", "playlist-read-private"],
}

# -- connect sessions -------------------------------------------------------------------------

CONNECT_SESSION_BODIES = named(
    minimal=("Any configured provider", {"tenant_id": TENANT_ID, "user_id": USER_ID}),
    popup=(
        "Spotify in a popup from your web app",
        {
            "tenant_id": TENANT_ID,
            "user_id": USER_ID,
            "allowed_providers": [PROVIDER],
            "scopes": {PROVIDER: ["user-read-email", "playlist-read-private"]},
            "origin": "https://app.example.com",
            "return_url": "https://app.example.com/settings/integrations",
        },
    ),
)

CONNECT_SESSION: dict[str, Any] = {
    "token": CONNECT_SESSION_TOKEN,
    "connect_url": f"http://127.0.0.1:8080/connect?session={CONNECT_SESSION_TOKEN}",
    "expires_at": "2026-11-30T12:30:00Z",
}

# -- providers --------------------------------------------------------------------------------

SPOTIFY_PROVIDER: dict[str, Any] = {
    "name": PROVIDER,
    "display_name": "Spotify",
    "auth_mode": "oauth2",
    "scopes": [
        {"name": "user-read-email", "description": "See your email address"},
        {"name": "playlist-read-private", "description": "Read your private playlists"},
    ],
    "configured": True,
}

PROVIDER_LIST: dict[str, Any] = {
    "providers": [
        {
            "name": "bluesky",
            "display_name": "Bluesky",
            "auth_mode": "app_password",
            "scopes": [{"name": "com.atproto.appPass", "description": "Read, post and manage your account with an app password"}],
            "configured": True,
        },
        SPOTIFY_PROVIDER,
        {
            "name": "acme-crm",
            "display_name": "Acme CRM",
            "auth_mode": "oauth2",
            "scopes": [{"name": "contacts.read", "description": "contacts.read"}],
            "configured": True,
        },
    ]
}

CUSTOM_PROVIDER: dict[str, Any] = {
    "name": "acme-crm",
    "display_name": "Acme CRM",
    "auth_mode": "oauth2",
    "scopes": [{"name": "openid", "description": "openid"}, {"name": "contacts.read", "description": "contacts.read"}],
    "configured": True,
}

PROVIDER_BODIES = named(
    catalog=(
        "Your Spotify app (a catalog provider)",
        {"client_id": "your-spotify-client-id", "client_secret": "your-spotify-client-secret", "scopes": ["user-read-email", "playlist-read-private"]},
    ),
    overrides=(
        "A catalog provider pointed at another host (a proxy, an emulator)",
        {
            "client_id": "your-spotify-client-id",
            "client_secret": "your-spotify-client-secret",
            "overrides": {
                "authorization_url": "https://spotify-proxy.example.com/authorize",
                "token_url": "https://spotify-proxy.example.com/api/token",
                "api_base_url": "https://spotify-proxy.example.com/v1",
            },
        },
    ),
    custom=(
        "A custom OAuth 2.0 provider, every endpoint declared",
        {
            "auth_mode": "oauth2",
            "display_name": "Acme CRM",
            "authorization_url": "https://login.acme-crm.example/oauth/authorize",
            "token_url": "https://login.acme-crm.example/oauth/token",
            "client_id": "your-acme-client-id",
            "client_secret": "your-acme-client-secret",
            "scopes": ["openid", "contacts.read"],
            "scope_separator": " ",
            "token_auth": "client_secret_basic",
            "pkce": True,
            "userinfo_url": "https://login.acme-crm.example/oauth/userinfo",
            "revocation_url": "https://login.acme-crm.example/oauth/revoke",
            "account_id_field": "sub",
            "issuer": "https://login.acme-crm.example",
            "api_base_url": "https://api.acme-crm.example",
        },
    ),
    discovered=(
        "A custom OAuth 2.0 provider discovered from its issuer",
        {
            "auth_mode": "oauth2",
            "display_name": "Acme CRM",
            "issuer": "https://login.acme-crm.example",
            "client_id": "your-acme-client-id",
            "client_secret": "your-acme-client-secret",
            "scopes": ["openid", "contacts.read"],
            "api_base_url": "https://api.acme-crm.example",
        },
    ),
)

# -- webhooks ---------------------------------------------------------------------------------

WEBHOOK_BODIES = named(endpoint=("Your receiver", {"url": "https://app.example.com/webhooks/authpipe"}))
WEBHOOK_WITH_SECRET: dict[str, Any] = {"url": "https://app.example.com/webhooks/authpipe", "secret": WEBHOOK_SECRET}
WEBHOOK: dict[str, Any] = {"url": "https://app.example.com/webhooks/authpipe", "disabled_at": None}

# -- events -----------------------------------------------------------------------------------

EVENT_LIST: dict[str, Any] = {
    "events": [
        {
            "id": EVENT_ID,
            "type": "connection.refreshed",
            "created_at": "2026-11-30T12:30:00Z",
            "connection_id": CONNECTION_ID,
            "data": {"connection": REFRESHED_CONNECTION},
        },
        {
            "id": OLDER_EVENT_ID,
            "type": "connection.created",
            "created_at": "2026-11-30T12:00:00Z",
            "connection_id": CONNECTION_ID,
            "data": {"connection": CONNECTION | {"last_refreshed_at": None, "last_checked_at": None}},
        },
    ],
    "next_cursor": OLDER_EVENT_ID,
}

# -- query and path parameters ----------------------------------------------------------------

TENANT_EXAMPLES = named(acme=("Acme's organization", TENANT_ID))
USER_EXAMPLES = named(user=("One of Acme's users", USER_ID))
PROVIDER_EXAMPLES = named(spotify=("Spotify", PROVIDER))
PROVIDER_NAME_EXAMPLES = named(spotify=("A catalog provider", PROVIDER), custom=("A custom provider", "acme-crm"))
CONNECTION_ID_EXAMPLES = named(connection=("A connection id", CONNECTION_ID))
EVENT_TYPE_EXAMPLES = named(created=("New connections", "connection.created"), revoked=("Revocations", "connection.revoked"))
