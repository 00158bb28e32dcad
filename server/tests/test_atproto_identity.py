"""The atproto identity rules on their own: where a DID's document lives, what is read from it, and
which PDS endpoints are bare origins (the end-to-end cases are in e2e/test_bluesky_identity.py)."""

from __future__ import annotations

import pytest

from authpipe_server.egress import EgressPolicy
from authpipe_server.providers.atproto_identity import IdentityError, did_document_url, parse_document, pds_origin

PLC = "https://plc.directory"
PUBLIC, LOOPBACK = EgressPolicy.build("public"), EgressPolicy.build("loopback")


@pytest.mark.parametrize(
    "did, url",
    [
        ("did:plc:ewvi7nxzyoun6zhxrhs64oiz", "https://plc.directory/did:plc:ewvi7nxzyoun6zhxrhs64oiz"),
        ("did:web:example.com", "https://example.com/.well-known/did.json"),
        ("did:web:Example.com%3A8443", "https://example.com:8443/.well-known/did.json"),
        ("did:web:example.com%3a8443:users:alice", "https://example.com:8443/users/alice/did.json"),
    ],
)
def test_did_document_url(did: str, url: str) -> None:
    assert did_document_url(did, PLC) == url


@pytest.mark.parametrize(
    "did",
    ["did:web:example.com:..:admin", "did:web:example.com%2Fx", "did:web:ex%40ample.com", "did:web:example.com%3A", "did:key:z6Mk", "did:web:a/b"],
)
def test_did_document_url_refuses_what_names_no_host(did: str) -> None:
    with pytest.raises(IdentityError):
        did_document_url(did, PLC)


def test_document_must_be_about_the_did_and_only_the_first_handle_counts() -> None:
    did = "did:web:example.com"
    service = {"id": f"{did}#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": "https://pds.example.com"}
    document = parse_document(did, {"id": did, "alsoKnownAs": ["https://x.example", "at://Alice.Example.com", "at://b.example.com"], "service": [service]})
    assert (document.pds, document.handle) == ("https://pds.example.com", "alice.example.com")
    wrong_type = parse_document(did, {"id": did, "alsoKnownAs": ["at://not a handle"], "service": [service | {"type": "Other"}]})
    assert (wrong_type.pds, wrong_type.handle) == (None, None)
    with pytest.raises(IdentityError):
        parse_document(did, {"id": "did:web:other.example", "service": [service]})


@pytest.mark.parametrize(
    "endpoint, origin",
    [
        ("https://pds.example.com", "https://pds.example.com"),
        ("https://PDS.example.com:443/", "https://pds.example.com"),
        ("https://pds.example.com:8443", "https://pds.example.com:8443"),
        ("https://[2001:db8::1]:8443", "https://[2001:db8::1]:8443"),
    ],
)
def test_pds_origin_rebuilds_a_bare_origin(endpoint: str, origin: str) -> None:
    assert pds_origin(endpoint, EgressPolicy.build("any")) == origin


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://pds.example.com/xrpc",
        "https://pds.example.com?",
        "https://pds.example.com/?a=b",
        "https://pds.example.com#",
        "https://u:p@pds.example.com",
        "https://pds.example.com\\@evil.example",
        "http://pds.example.com",
        "https://169.254.169.254",
        "https://10.0.0.1",
        "https://127.0.0.1:2583",
        "file:///etc/passwd",
        "https://pds.exa%6dple.com",
    ],
)
def test_pds_origin_refuses_anything_else_under_the_public_policy(endpoint: str) -> None:
    with pytest.raises(IdentityError):
        pds_origin(endpoint, PUBLIC)


def test_plain_http_only_to_loopback_where_the_policy_allows_it() -> None:
    assert pds_origin("http://127.0.0.1:2583", LOOPBACK) == "http://127.0.0.1:2583"
    with pytest.raises(IdentityError):
        pds_origin("http://192.0.2.10:2583", LOOPBACK)
