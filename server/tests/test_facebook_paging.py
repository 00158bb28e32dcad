"""Graph's paging links are followed only on the API's own origin, and never carry a token."""

from __future__ import annotations

from authpipe_server.egress import Egress, EgressPolicy
from authpipe_server.providers.base import AppCredentials
from authpipe_server.providers.catalog import catalog
from authpipe_server.providers.hooks.facebook import FacebookProvider


def provider() -> FacebookProvider:
    return FacebookProvider(catalog()["facebook"], AppCredentials("id", "secret"), Egress(EgressPolicy("public")))


def test_a_paging_link_on_graph_loses_its_token() -> None:
    link = "https://graph.facebook.com/v22.0/1000/accounts?access_token=EAAB-user-token&limit=25&after=QVFI"
    assert provider().next_page(link) == "https://graph.facebook.com/v22.0/1000/accounts?limit=25&after=QVFI"


def test_a_paging_link_elsewhere_ends_the_listing() -> None:
    for link in ("https://evil.example/v22.0/me/accounts?after=x", "http://graph.facebook.com/v22.0/me/accounts", None, 42):
        assert provider().next_page(link) is None
