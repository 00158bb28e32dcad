"""A provider as the services see it: a catalog entry (or custom definition) merged with the
project's app (client id, secret, scopes, host overrides)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import urlsplit

TokenAuth = Literal["client_secret_basic", "client_secret_post", "none"]


@dataclass(frozen=True)
class Request:
    method: str
    path: str = ""
    url: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    json: dict[str, Any] | None = None

    @classmethod
    def parse(cls, data: dict[str, Any] | None) -> "Request | None":
        return None if data is None else cls(**data)


@dataclass(frozen=True)
class Scope:
    name: str
    description: str


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    display_name: str
    auth_mode: Literal["oauth2", "app_password"]
    scopes: tuple[Scope, ...]
    default_scopes: tuple[str, ...]
    refresh: str
    authorization_url: str | None = None
    token_url: str | None = None
    api_base_url: str | None = None
    plc_url: str | None = None
    issuer: str | None = None
    require_iss: bool = False
    token_auth: TokenAuth = "client_secret_basic"
    pkce: bool = True
    scope_separator: str = " "
    authorization_params: dict[str, str] = field(default_factory=dict)
    account_request: Request | None = None
    account_id_fields: tuple[str, ...] = ()
    account_name_fields: tuple[str, ...] = ()
    health: Request | None = None
    revocation: Request | None = None
    revocation_rfc7009: bool = False
    hooks: str | None = None
    custom: bool = False

    @classmethod
    def from_entry(cls, entry: dict[str, Any], *, custom: bool = False) -> "ProviderSpec":
        account = entry.get("account") or {}
        revocation = entry.get("revocation")
        return cls(
            name=entry["name"],
            display_name=entry["display_name"],
            auth_mode=entry["auth_mode"],
            scopes=tuple(Scope(**s) for s in entry["scopes"]),
            default_scopes=tuple(entry["default_scopes"]),
            refresh=entry["refresh"],
            authorization_url=entry.get("authorization_url"),
            token_url=entry.get("token_url"),
            api_base_url=entry.get("api_base_url"),
            plc_url=entry.get("plc_url"),
            issuer=entry.get("issuer"),
            require_iss=entry.get("require_iss", False),
            token_auth=entry.get("token_auth", "client_secret_basic"),
            pkce=entry.get("pkce", True),
            scope_separator=entry.get("scope_separator", " "),
            authorization_params=dict(entry.get("authorization_params", {})),
            account_request=Request.parse(account.get("request")),
            account_id_fields=tuple(account.get("id", ())),
            account_name_fields=tuple(account.get("name", ())),
            health=Request.parse(entry.get("health")),
            revocation=(
                Request(method=revocation["method"], path=revocation.get("path", ""), url=revocation.get("url"))
                if revocation
                else None
            ),
            revocation_rfc7009=bool(revocation and revocation.get("rfc7009")),
            hooks=entry.get("hooks"),
            custom=custom,
        )

    def with_overrides(self, overrides: dict[str, str]) -> "ProviderSpec":
        """Point the provider at other hosts (a proxy, an emulator). A URL elsewhere on the
        overridden host (e.g. Buffer's revocation endpoint, or its issuer) moves with it."""
        moved: dict[str, Any] = {}
        for key in ("authorization_url", "token_url", "api_base_url"):
            if overrides.get(key):
                moved[key] = overrides[key]
        if "token_url" in moved and self.token_url:
            old_origin = _origin(self.token_url)
            new_token = moved["token_url"]
            base = new_token[: len(new_token) - len(urlsplit(self.token_url).path)] if new_token.endswith(urlsplit(self.token_url).path) else _origin(new_token)
            if self.issuer and _origin(self.issuer) == old_origin:
                moved["issuer"] = base + self.issuer[len(old_origin):]
            if self.revocation and self.revocation.url and _origin(self.revocation.url) == old_origin:
                moved["revocation"] = replace(self.revocation, url=base + self.revocation.url[len(old_origin):])
        if overrides.get("plc_url"):
            moved["plc_url"] = overrides["plc_url"]
        return replace(self, **moved)

    def scope_names(self) -> set[str]:
        return {s.name for s in self.scopes}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
