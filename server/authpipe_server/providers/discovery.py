"""Declaring a custom OAuth 2.0 provider from its issuer alone: fetch the authorization server's
metadata (RFC 8414, else OpenID Connect Discovery 1.0) and fill in what the declaration left out.

Each check sits beside the sentence of the specification it enforces. A failure is a
`DiscoveryFailed` whose message names the URL asked and what was wrong with the answer; the
answer itself is never repeated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from authpipe_server.egress import Egress, EgressError, EgressRefused, EgressTimeout, ResponseTooLarge
from authpipe_server.providers.http import clean_text, json_body

DEADLINE = 5.0
"""Seconds for each metadata request: a declaration waits for it."""
MAX_BYTES = 256 * 1024
"""Metadata documents are a few kilobytes; anything past this is not one."""
ENDPOINT = re.compile(r"^https?://[^\s]+$")
MAX_URL = 2048
SHOWN_ISSUER = 200
NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class DiscoveryFailed(ValueError):
    """The issuer's metadata could not be used; the message says why (safe to show)."""


@dataclass(frozen=True)
class ServerMetadata:
    """What Authpipe uses of an authorization server's metadata."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str | None
    revocation_endpoint: str | None
    token_endpoint_auth_methods: tuple[str, ...]
    code_challenge_methods: tuple[str, ...] | None
    iss_parameter_supported: bool


def metadata_urls(issuer: str) -> list[str]:
    """Where an issuer's metadata may be, in the order they are tried."""
    parts = urlsplit(issuer)
    # RFC 8414 §3: "Authorization servers supporting metadata MUST make a JSON document ...
    # available at a path formed by inserting a well-known URI string into the authorization
    # server's issuer identifier between the host component and the path component, if any."
    # §3.1: "If the issuer identifier value contains a path component, any terminating "/" MUST
    # be removed before inserting "/.well-known/" and the well-known URI suffix".
    rfc8414 = urlunsplit((parts.scheme, parts.netloc, "/.well-known/oauth-authorization-server" + parts.path.rstrip("/"), "", ""))
    # OpenID Connect Discovery 1.0 §4: "... the path formed by concatenating the string
    # /.well-known/openid-configuration to the Issuer. ... If the Issuer value contains a path
    # component, any terminating / MUST be removed before appending
    # /.well-known/openid-configuration."
    openid = issuer.rstrip("/") + "/.well-known/openid-configuration"
    return [rfc8414, openid]


async def fetch_metadata(egress: Egress, issuer: str) -> ServerMetadata:
    """The issuer's metadata, checked; DiscoveryFailed when there is none that can be used."""
    # RFC 8414 §2, issuer: "a URL that uses the "https" scheme and has no query or fragment
    # components." (The scheme is the egress policy's to enforce: http reaches loopback in tests.)
    if "?" in issuer or "#" in issuer:
        raise DiscoveryFailed("the issuer must be a URL without a query or fragment")
    tried: list[str] = []
    for url in metadata_urls(issuer):
        try:
            response = await egress.request("GET", url, deadline=DEADLINE, max_bytes=MAX_BYTES)
        except EgressRefused as exc:
            raise DiscoveryFailed(f"the issuer is refused: {exc}") from None
        except EgressTimeout:
            raise DiscoveryFailed(f"{url} did not answer within {DEADLINE:g} s") from None
        except ResponseTooLarge:
            raise DiscoveryFailed(f"{url} answered with more than {MAX_BYTES // 1024} KiB, which is no metadata document") from None
        except EgressError as exc:
            raise DiscoveryFailed(f"cannot fetch {url}: {exc.message}") from None
        document = json_body(response) if response.status_code == 200 else None
        if isinstance(document, dict):
            return parse_metadata(issuer, url, document)
        tried.append(f"{url} (HTTP {response.status_code}{', not a JSON object' if response.status_code == 200 else ''})")
    raise DiscoveryFailed("found no authorization server metadata at " + " nor ".join(tried) + "; declare authorization_url and token_url instead")


def parse_metadata(issuer: str, url: str, document: dict[str, Any]) -> ServerMetadata:
    """The parts of a metadata document Authpipe uses, each checked."""
    found = document.get("issuer")
    # RFC 8414 §3.3: "The "issuer" value returned MUST be identical to the authorization server's
    # issuer identifier value into which the well-known URI string was inserted to create the URL
    # used to retrieve the metadata. If these values are not identical, the data contained in the
    # response MUST NOT be used." (OpenID Connect Discovery 1.0 §4.3 says the same.)
    if found != issuer:
        shown = clean_text(found) if isinstance(found, str) else None
        named = f"names the issuer {shown[:SHOWN_ISSUER]!r}" if shown else "names no issuer"
        raise DiscoveryFailed(f"the metadata at {url} {named}, not {issuer!r}; the two must be identical (RFC 8414 §3.3)")
    return ServerMetadata(
        issuer=issuer,
        # RFC 8414 §2, authorization_endpoint: "This is REQUIRED unless no grant types are
        # supported that use the authorization endpoint." (Authpipe uses the code grant.)
        authorization_endpoint=_required_endpoint(document, "authorization_endpoint", url),
        # RFC 8414 §2, token_endpoint: "This is REQUIRED unless only the implicit grant type is
        # supported."
        token_endpoint=_required_endpoint(document, "token_endpoint", url),
        userinfo_endpoint=_endpoint(document, "userinfo_endpoint", url),
        revocation_endpoint=_endpoint(document, "revocation_endpoint", url),
        # RFC 8414 §2, token_endpoint_auth_methods_supported: "If omitted, the default is
        # "client_secret_basic"".
        token_endpoint_auth_methods=_strings(document, "token_endpoint_auth_methods_supported", url) or ("client_secret_basic",),
        code_challenge_methods=_strings(document, "code_challenge_methods_supported", url),
        # RFC 9207 §3, authorization_response_iss_parameter_supported: "If omitted, the default
        # value is false."
        iss_parameter_supported=document.get("authorization_response_iss_parameter_supported") is True,
    )


def _required_endpoint(document: dict[str, Any], name: str, url: str) -> str:
    value = _endpoint(document, name, url)
    if value is None:
        raise DiscoveryFailed(f"the metadata at {url} has no {name}")
    return value


def _endpoint(document: dict[str, Any], name: str, url: str) -> str | None:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_URL or not ENDPOINT.match(value):
        raise DiscoveryFailed(f"the metadata at {url} has an unusable {name} (not an http(s) URL)")
    return value


def _strings(document: dict[str, Any], name: str, url: str) -> tuple[str, ...] | None:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise DiscoveryFailed(f"the metadata at {url} has an unusable {name} (not a list of strings)")
    return tuple(value)


def fill_declaration(declared: dict[str, Any], metadata: ServerMetadata) -> dict[str, Any]:
    """The custom-provider declaration completed from the metadata: what the developer wrote
    wins; endpoints, client authentication and `require_iss` come from the server where absent."""
    filled = dict(declared)
    for field, value in (
        ("authorization_url", metadata.authorization_endpoint),
        ("token_url", metadata.token_endpoint),
        ("userinfo_url", metadata.userinfo_endpoint),
        ("revocation_url", metadata.revocation_endpoint),
    ):
        if value and not filled.get(field):
            filled[field] = value
    # RFC 9207 §2.4: "Clients MUST reject authorization responses without the iss parameter from
    # authorization servers that do support the parameter according to the client's
    # configuration." The metadata is that configuration here.
    filled.setdefault("require_iss", metadata.iss_parameter_supported)
    if "token_auth" not in filled:
        filled["token_auth"] = token_auth_for(metadata, has_secret=bool(filled.get("client_secret")))
    # RFC 8414 §2, code_challenge_methods_supported: "JSON array containing a list of Proof Key
    # for Code Exchange (PKCE) [RFC7636] code challenge methods supported by this authorization
    # server." Authpipe sends S256 only (RFC 7636 §4.2: "If the client is capable of using
    # "S256", it MUST use "S256"").
    # A server that omits the list is not held to it: many support PKCE without saying so.
    methods = metadata.code_challenge_methods
    if filled.get("pkce", True) and methods is not None and "S256" not in methods:
        raise DiscoveryFailed(
            f"the server does not list S256 among its code_challenge_methods_supported ({shown(methods)}); "
            "declare \"pkce\": false to connect without PKCE (a client with a client_secret only)"
        )
    return filled


def token_auth_for(metadata: ServerMetadata, *, has_secret: bool) -> str:
    """The client authentication to use at a server that lists what it supports: Basic or a
    form field with a secret (Basic first: RFC 6749 §2.3.1 makes it the one every server
    supports), no authentication for a public client."""
    supported = metadata.token_endpoint_auth_methods
    wanted = ("client_secret_basic", "client_secret_post") if has_secret else ("none",)
    for method in wanted:
        if method in supported:
            return method
    listed = shown(supported)
    if has_secret:
        raise DiscoveryFailed(f"the token endpoint supports neither client_secret_basic nor client_secret_post (it lists {listed}); Authpipe cannot authenticate to it")
    raise DiscoveryFailed(f"the token endpoint does not accept public clients (it lists {listed}); send a client_secret")


def shown(names: tuple[str, ...]) -> str:
    """Method names from a metadata document, fit to repeat in a message (odd ones left out)."""
    fit = [name for name in names[:10] if NAME.match(name)]
    return ", ".join(fit) or "none"
