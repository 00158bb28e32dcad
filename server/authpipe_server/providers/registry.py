"""Building a project's Provider: catalog entry or custom definition + the project's app."""

from __future__ import annotations

from authpipe_server.egress import Egress
from authpipe_server.providers.base import AppCredentials, Provider
from authpipe_server.providers.bluesky import BlueskyProvider
from authpipe_server.providers.hooks.buffer import BufferProvider
from authpipe_server.providers.hooks.facebook import FacebookProvider
from authpipe_server.providers.hooks.instagram import InstagramProvider
from authpipe_server.providers.oauth2 import OAuth2Provider
from authpipe_server.providers.spec import ProviderSpec

HOOKS: dict[str, type[OAuth2Provider]] = {
    "facebook": FacebookProvider,
    "instagram": InstagramProvider,
    "buffer": BufferProvider,
}


def build_provider(spec: ProviderSpec, app: AppCredentials | None, egress: Egress) -> Provider:
    if spec.auth_mode == "app_password":
        return BlueskyProvider(spec, app, egress)
    return HOOKS.get(spec.hooks or "", OAuth2Provider)(spec, app, egress)
