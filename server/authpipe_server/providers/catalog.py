"""The provider catalog: one YAML entry per provider in `catalog/`, validated against
`schema.ENTRY_SCHEMA` when first loaded (at start), plus custom OAuth 2.0 providers declared by a
project through `PUT /v1/providers/{name}`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from authpipe_server.errors import ConfigError
from authpipe_server.providers.schema import ENTRY_SCHEMA
from authpipe_server.providers.spec import ProviderSpec

CATALOG_DIR = Path(__file__).parent / "catalog"
_validator = jsonschema.Draft202012Validator(ENTRY_SCHEMA)


class InvalidDefinition(ValueError):
    """A provider definition breaks the schema; the message names the first problem."""


def validate_entry(entry: dict[str, Any]) -> None:
    error = jsonschema.exceptions.best_match(_validator.iter_errors(entry))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "definition"
        raise InvalidDefinition(f"{where}: {error.message}")
    if entry.get("token_auth") == "none" and entry.get("pkce") is False:
        # RFC 9700 §2.1.1: "Public clients MUST use PKCE [RFC7636] to this end" (against the
        # injection of stolen authorization codes).
        raise InvalidDefinition("a public client (token_auth none) must use PKCE: set pkce true, or authenticate with a client_secret")
    if entry.get("require_iss") and not entry.get("issuer"):
        raise InvalidDefinition("require_iss needs the issuer that the callback's iss must equal")


@lru_cache(maxsize=1)
def catalog() -> dict[str, ProviderSpec]:
    specs: dict[str, ProviderSpec] = {}
    for path in sorted(CATALOG_DIR.glob("*.yaml")):
        entry = yaml.safe_load(path.read_text())
        try:
            validate_entry(entry)
        except InvalidDefinition as exc:
            raise ConfigError(f"provider catalog entry {path.name} is invalid: {exc}") from None
        if entry["name"] != path.stem:
            raise ConfigError(f"provider catalog entry {path.name} names itself {entry['name']!r}")
        specs[entry["name"]] = ProviderSpec.from_entry(entry)
    return specs


def custom_entry(body: dict[str, Any]) -> dict[str, Any]:
    """Turn the contract's custom-provider body into a catalog entry (then validated like one)."""
    scopes = [str(s) for s in body.get("scopes") or []]
    entry: dict[str, Any] = {
        "name": body["name"],
        "display_name": body.get("display_name") or body["name"],
        "auth_mode": "oauth2",
        "authorization_url": body.get("authorization_url"),
        "token_url": body.get("token_url"),
        "token_auth": body.get("token_auth", "client_secret_basic"),
        "pkce": body.get("pkce", True),
        "scope_separator": body.get("scope_separator", " "),
        "authorization_params": {},
        "api_base_url": body.get("api_base_url"),
        "issuer": body.get("issuer"),
        # RFC 9207 §2.4: a client that knows its server's issuer rejects a callback without iss.
        "require_iss": body.get("require_iss", body.get("issuer") is not None),
        "scopes": [{"name": s, "description": s} for s in scopes],
        "default_scopes": scopes,
        "refresh": "oauth2",
        "revocation": {"method": "POST", "url": body["revocation_url"], "rfc7009": True} if body.get("revocation_url") else None,
    }
    if body.get("userinfo_url"):
        request = {"method": "GET", "path": "", "url": body["userinfo_url"]}
        id_field = body.get("account_id_field") or "sub"
        entry["account"] = {"request": request, "id": [id_field], "name": ["name", "preferred_username", "email", id_field]}
        entry["health"] = request
    return {k: v for k, v in entry.items() if v is not None or k == "revocation"}
