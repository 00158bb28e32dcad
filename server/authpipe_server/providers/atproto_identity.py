"""atproto identity as the app-password flow needs it (atproto.com/specs/did, /specs/handle): where
a DID's document lives, what the document says (its PDS, its handle), and the shape a PDS endpoint
must have before Authpipe sends it an app password or a token.

Everything here comes from documents someone outside controls (a did:web document is served by
whoever typed the DID), so nothing is used as it comes: a PDS endpoint is rebuilt from its parsed
parts as a bare origin, and a handle read here is only a claim until `BlueskyProvider` has
verified it both ways.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from authpipe_server.egress import EgressPolicy, EgressRefused

INVALID_HANDLE = "handle.invalid"
"""atproto's name for an account whose handle does not verify (the spec's reserved value)."""

HANDLE = re.compile(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
DID = re.compile(r"^did:(plc:[a-z2-7]{24}|web:[a-zA-Z0-9.%-]+(:[a-zA-Z0-9._-]+)*)$")
MAX_DID = 2048
_WEB_HOST = re.compile(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:[0-9]{1,5})?$")
_HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
PDS_SERVICE = ("#atproto_pds", "AtprotoPersonalDataServer")
ORIGIN_ONLY = "its personal data server must be a bare https://host[:port] address, without a path, query, fragment or user name"


class IdentityError(ValueError):
    """A DID, DID document or PDS endpoint that cannot be used. The message, about "it" (the DID),
    is safe to show to the person who typed the identifier: it names the rule, never a secret."""


def is_did(value: str) -> bool:
    return len(value) <= MAX_DID and DID.match(value) is not None


def did_document_url(did: str, plc_url: str) -> str:
    """did:plc → the PLC directory; did:web → its host over https (w3c-ccg.github.io/did-method-web):
    `did:web:example.com%3A8443` → `https://example.com:8443/.well-known/did.json`,
    `did:web:example.com:u:alice` → `https://example.com/u/alice/did.json`."""
    if not is_did(did):
        raise IdentityError("it is not a DID this server can resolve (did:plc or did:web)")
    if did.startswith("did:plc:"):
        return f"{plc_url.rstrip('/')}/{did}"
    host, *path = did.removeprefix("did:web:").split(":")
    host = re.sub("%3a", ":", host, flags=re.IGNORECASE).lower()  # the spec's one encoding: a port
    if not _WEB_HOST.match(host) or any(segment in (".", "..") for segment in path):
        raise IdentityError("it does not name a host (did:web:example.com or did:web:example.com%3A8443)")
    return f"https://{host}/{'/'.join(path)}/did.json" if path else f"https://{host}/.well-known/did.json"


@dataclass(frozen=True)
class DidDocument:
    did: str
    pds: str | None
    """The `#atproto_pds` service endpoint exactly as written: not yet checked (see `pds_origin`)."""
    handle: str | None
    """The handle the document claims (its first `at://` alias), not yet verified."""


def parse_document(did: str, document: Any) -> DidDocument:
    """The parts of a DID document atproto uses. The document must be about `did` (its `id`):
    otherwise any server could hand out someone else's document, or claim a DID for its own."""
    if not isinstance(document, dict):
        raise IdentityError("its DID document is not a JSON object")
    if document.get("id") != did:
        raise IdentityError("the DID document served for it is about another DID")
    return DidDocument(did, _pds_endpoint(did, document.get("service")), _declared_handle(document.get("alsoKnownAs")))


def _pds_endpoint(did: str, services: Any) -> str | None:
    for service in services if isinstance(services, list) else []:
        if not isinstance(service, dict):
            continue
        service_id, service_type = PDS_SERVICE
        if service.get("id") in (service_id, did + service_id) and service.get("type") == service_type:
            endpoint = service.get("serviceEndpoint")
            return endpoint if isinstance(endpoint, str) else None
    return None


def _declared_handle(aliases: Any) -> str | None:
    """The first `at://` entry of `alsoKnownAs` (the atproto DID spec: later ones are ignored),
    when it is a syntactically valid handle."""
    for alias in aliases if isinstance(aliases, list) else []:
        if isinstance(alias, str) and alias.startswith("at://"):
            handle = alias.removeprefix("at://").lower()
            return handle if HANDLE.match(handle) else None
    return None


def pds_origin(endpoint: str, policy: EgressPolicy) -> str:
    """`endpoint` rebuilt as a bare origin `scheme://host[:port]`, or IdentityError.

    Refused: a path other than "/", a query or fragment (even an empty `?`: it would turn the
    `/xrpc/...` Authpipe appends into a query string), user:password@, and whatever the egress
    policy's URL rules refuse (a scheme other than https, plain http off loopback, an address
    literal such as 169.254.169.254). The host's resolved addresses are checked when it is called.
    """
    if len(endpoint) > MAX_DID or any(mark in endpoint for mark in "?#@\\"):
        raise IdentityError(ORIGIN_ONLY)
    try:
        policy.check_url(endpoint)
    except EgressRefused as exc:
        raise IdentityError(f"its personal data server cannot be called: {exc}") from None
    parts = urlsplit(endpoint)
    host = (parts.hostname or "").lower()
    if parts.path not in ("", "/") or not (_HOSTNAME.match(host) or _is_ip(host)):
        raise IdentityError(ORIGIN_ONLY)
    scheme = parts.scheme.lower()
    port = parts.port  # check_url has made sure it parses
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != (443 if scheme == "https" else 80):
        netloc += f":{port}"
    return f"{scheme}://{netloc}"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
