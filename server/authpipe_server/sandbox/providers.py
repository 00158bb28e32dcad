"""The sandbox's providers: the emulators mounted inside the server under `/_sandbox/{name}`,
and the overrides that point each catalog provider at its emulator (same paths as the real
hosts, each host becoming a path prefix; see emulators/README.md)."""

from __future__ import annotations

from typing import Callable

from fastapi import FastAPI

from authpipe_server.emulators import bluesky, buffer, facebook, spotify

PREFIX = "/_sandbox"
GRAPH_VERSION = "v22.0"


def overrides(provider: str, emulator_url: str) -> dict[str, str]:
    """Catalog overrides pointing `provider` at an emulator served at `emulator_url`."""
    if provider == "spotify":
        return {
            "authorization_url": f"{emulator_url}/accounts/authorize",
            "token_url": f"{emulator_url}/accounts/api/token",
            "api_base_url": f"{emulator_url}/api",
        }
    if provider in ("facebook", "instagram"):
        return {
            "authorization_url": f"{emulator_url}/www/{GRAPH_VERSION}/dialog/oauth",
            "token_url": f"{emulator_url}/graph/{GRAPH_VERSION}/oauth/access_token",
            "api_base_url": f"{emulator_url}/graph/{GRAPH_VERSION}",
        }
    if provider == "buffer":
        return {
            "authorization_url": f"{emulator_url}/auth/auth",
            "token_url": f"{emulator_url}/auth/token",
            "api_base_url": f"{emulator_url}/api",
        }
    if provider == "bluesky":
        return {"api_base_url": emulator_url, "plc_url": f"{emulator_url}/plc"}
    raise KeyError(provider)


# provider → the emulator that plays it (Instagram through Facebook Login is Facebook's emulator)
EMULATOR_OF = {"spotify": "spotify", "facebook": "facebook", "instagram": "facebook", "buffer": "buffer", "bluesky": "bluesky"}
FACTORIES: dict[str, Callable[..., FastAPI]] = {
    "spotify": spotify.create_app,
    "facebook": facebook.create_app,
    "buffer": buffer.create_app,
    "bluesky": bluesky.create_app,
}


def emulator_url(public_url: str, provider: str) -> str:
    return f"{public_url}{emulator_path(EMULATOR_OF[provider])}"


def emulator_path(name: str) -> str:
    return f"{PREFIX}/{name}"


def mounted_emulators(public_url: str) -> dict[str, FastAPI]:
    """Emulator name → its app (`app.state.emulator` is its state), for mounting at emulator_path."""
    return {name: factory(base_url=f"{public_url}{emulator_path(name)}") for name, factory in FACTORIES.items()}
