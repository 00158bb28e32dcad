"""The JSON Schema every catalog entry (and every custom provider) must satisfy, checked at start."""

from __future__ import annotations

from typing import Any

URL = {"type": "string", "pattern": r"^https?://[^\s]+$", "maxLength": 2048}
REQUEST = {
    "type": "object",
    "additionalProperties": False,
    "required": ["method", "path"],
    "properties": {
        "method": {"enum": ["GET", "POST", "DELETE"]},
        "path": {"type": "string", "maxLength": 512},
        "url": URL,
        "params": {"type": "object", "additionalProperties": {"type": "string"}},
        "json": {"type": "object"},
    },
}
FIELD_PATHS = {"type": "array", "items": {"type": "string", "pattern": r"^[A-Za-z0-9_.]+$"}, "minItems": 1}

ENTRY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "display_name", "auth_mode", "scopes", "default_scopes", "refresh"],
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9-]{2,64}$"},
        "display_name": {"type": "string", "minLength": 1, "maxLength": 128},
        "auth_mode": {"enum": ["oauth2", "app_password"]},
        "authorization_url": URL,
        "token_url": URL,
        "api_base_url": URL,
        "plc_url": URL,
        "issuer": URL,
        "require_iss": {"type": "boolean"},
        "token_auth": {"enum": ["client_secret_basic", "client_secret_post", "none"]},
        "pkce": {"type": "boolean"},
        "scope_separator": {"enum": [" ", ","]},
        "authorization_params": {"type": "object", "additionalProperties": {"type": "string"}},
        "default_scopes": {"type": "array", "items": {"type": "string"}},
        "scopes": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "description"],
                "properties": {"name": {"type": "string", "minLength": 1}, "description": {"type": "string"}},
            },
        },
        "account": {
            "type": "object",
            "additionalProperties": False,
            "required": ["request", "id"],
            "properties": {"request": REQUEST, "id": FIELD_PATHS, "name": FIELD_PATHS},
        },
        "health": REQUEST,
        "refresh": {"enum": ["oauth2", "fb_exchange_token", "bluesky_session", "none"]},
        "revocation": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["method"],
                    "properties": {
                        "method": {"enum": ["POST", "DELETE"]},
                        "path": {"type": "string"},
                        "url": URL,
                        "rfc7009": {"type": "boolean"},
                    },
                },
            ]
        },
        "hooks": {"type": "string", "pattern": r"^[a-z_]+$"},
    },
    "allOf": [
        {
            "if": {"properties": {"auth_mode": {"const": "oauth2"}}},
            "then": {"required": ["authorization_url", "token_url", "token_auth", "pkce", "scope_separator"]},
        }
    ],
}
