"""Configuration from arguments or the environment, and the secret key kept out of sight."""

from __future__ import annotations

import pytest
from support import Sandbox, make_client

from authpipe import AsyncAuthpipe, Authpipe, AuthpipeError


def test_configuration_from_the_environment(sandbox: Sandbox, user_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox.connect_bluesky(user_id)
    monkeypatch.setenv("AUTHPIPE_SECRET_KEY", sandbox.secret)
    monkeypatch.setenv("AUTHPIPE_URL", sandbox.url)
    with Authpipe() as ap:
        assert ap.base_url == sandbox.url
        assert ap.get_credential(provider="bluesky", tenant_id="org_acme", user_id=user_id).provider == "bluesky"


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUTHPIPE_URL", raising=False)
    ap = Authpipe(secret_key="ap_sk_test")
    assert (ap.base_url, ap.cache_size, ap.refresh_ahead, ap.timeout, ap.retries) == ("http://127.0.0.1:8080", 1000, 60.0, 10.0, 2)


@pytest.mark.parametrize("client", [Authpipe, AsyncAuthpipe])
def test_a_missing_key_is_a_clear_error(client: type[Authpipe | AsyncAuthpipe], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUTHPIPE_SECRET_KEY", raising=False)
    with pytest.raises(AuthpipeError) as caught:
        client()
    assert caught.value.code == "missing_secret_key" and caught.value.status is None
    assert "AUTHPIPE_SECRET_KEY" in caught.value.message


def test_bad_options_are_refused() -> None:
    with pytest.raises(AuthpipeError) as caught:
        Authpipe(secret_key="ap_sk_test", base_url="127.0.0.1:8080")
    assert caught.value.code == "invalid_base_url"
    with pytest.raises(ValueError, match="cache_size"):
        Authpipe(secret_key="ap_sk_test", cache_size=-1)
    ap = Authpipe(secret_key="ap_sk_test")
    with pytest.raises(ValueError, match="tenant_id"):
        ap.get_credential(provider="bluesky", tenant_id="", user_id="u1")
    with pytest.raises(ValueError, match="min_ttl"):
        ap.get_credential(provider="bluesky", tenant_id="t", user_id="u1", min_ttl=-1)


def test_the_secret_key_and_the_token_never_show(sandbox: Sandbox, user_id: str) -> None:
    sandbox.connect_bluesky(user_id)
    ap, _ = make_client(sandbox)
    cred = ap.get_credential(provider="bluesky", tenant_id="org_acme", user_id=user_id)
    assert cred.credential not in repr(cred) and cred.credential not in str(cred)
    assert cred.connection_id in repr(cred)
    for shown in (repr(ap), str(ap), repr(AsyncAuthpipe(secret_key=sandbox.secret, base_url=sandbox.url))):
        assert sandbox.secret not in shown

    wrong = f"{sandbox.secret[:-4]}XXXX"
    bad, _ = make_client(sandbox, secret_key=wrong)
    with pytest.raises(AuthpipeError) as caught:
        bad.get_credential(provider="bluesky", tenant_id="org_acme", user_id=user_id)
    error = caught.value
    assert (error.status, error.code) == (401, "unauthorized") and error.message
    for shown in (str(error), repr(error), repr(bad), str(error.args)):
        assert wrong not in shown and sandbox.secret not in shown
