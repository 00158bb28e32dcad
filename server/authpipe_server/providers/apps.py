"""A project's provider apps: configuring them, listing them, and building a Provider for a call.

Client secrets are sealed under the project's own data key (tenant `PROJECT_SCOPE`) and never
leave the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from authpipe_server.errors import AuthpipeError
from authpipe_server.ids import new_id
from authpipe_server.providers.base import AppCredentials, Provider
from authpipe_server.providers.catalog import catalog
from authpipe_server.providers.registry import build_provider
from authpipe_server.providers.spec import ProviderSpec
from authpipe_server.runtime import Runtime
from authpipe_server.store.models import ProviderApp
from authpipe_server.vault import Place
from authpipe_server.vault.barrier import PROJECT_SCOPE


class ProviderNotFound(AuthpipeError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no provider named {name!r} (see GET /v1/providers)")


class ProviderNotConfigured(AuthpipeError):
    def __init__(self, name: str) -> None:
        super().__init__(f"provider {name!r} has no app configured in this project: PUT /v1/providers/{name} first")


def secret_place(app: ProviderApp) -> Place:
    return Place(app.project_id, PROJECT_SCOPE, "provider_apps", app.id, "client_secret")


def spec_for(name: str, app: ProviderApp | None) -> ProviderSpec:
    """The provider's spec as this project sees it, or ProviderNotFound."""
    if app is not None and app.definition is not None:
        return ProviderSpec.from_entry(app.definition, custom=True)
    base = catalog().get(name)
    if base is None:
        raise ProviderNotFound(name)
    return base.with_overrides(app.overrides) if app is not None and app.overrides else base


def is_configured(spec: ProviderSpec, app: ProviderApp | None) -> bool:
    return spec.auth_mode == "app_password" or bool(app and app.client_id)


async def app_row(session: AsyncSession, project_id: str, name: str) -> ProviderApp | None:
    return await session.scalar(select(ProviderApp).where(ProviderApp.project_id == project_id, ProviderApp.provider == name))


@dataclass
class ProjectProvider:
    spec: ProviderSpec
    provider: Provider
    app: ProviderApp | None

    def scopes_for(self, requested: list[str] | None) -> list[str]:
        if requested:
            return requested
        if self.app is not None and self.app.scopes:
            return list(self.app.scopes)
        return list(self.spec.default_scopes)


async def load_provider(runtime: Runtime, project_id: str, name: str) -> ProjectProvider:
    """The provider bound to the project's app; ProviderNotFound / ProviderNotConfigured otherwise."""
    async with runtime.db.sessions() as session:
        app = await app_row(session, project_id, name)
    spec = spec_for(name, app)
    if not is_configured(spec, app):
        raise ProviderNotConfigured(name)
    credentials = None
    if app is not None and app.client_id:
        secret = (await runtime.vault.decrypt(secret_place(app), app.client_secret)).decode() if app.client_secret else None
        credentials = AppCredentials(app.client_id, secret)
    return ProjectProvider(spec, build_provider(spec, credentials, runtime.egress), app)


async def save_app(
    runtime: Runtime,
    project_id: str,
    name: str,
    *,
    client_id: str | None,
    client_secret: str | None,
    scopes: list[str],
    overrides: dict[str, str],
    definition: dict[str, Any] | None,
) -> ProviderApp:
    """Create or replace the project's app at `name`. A secret left out keeps the stored one."""
    async with runtime.db.sessions() as session:
        existing = await app_row(session, project_id, name)
    app_id = existing.id if existing else new_id("app")
    sealed: bytes | None = existing.client_secret if existing else None
    if client_secret is not None:
        probe = ProviderApp(id=app_id, project_id=project_id)
        sealed = await runtime.vault.encrypt(secret_place(probe), client_secret.encode())
    async with runtime.db.writing() as session:
        app = await session.get(ProviderApp, app_id) if existing else None
        if app is None:
            app = ProviderApp(id=app_id, project_id=project_id, provider=name)
            session.add(app)
        app.client_id, app.client_secret = client_id, sealed
        app.scopes, app.overrides, app.definition = scopes, overrides, definition
    return app


@dataclass(frozen=True)
class ListedProvider:
    spec: ProviderSpec
    app: ProviderApp | None
    configured: bool


async def project_providers(runtime: Runtime, project_id: str) -> list[ListedProvider]:
    """The catalog and the project's custom providers, by name, each with the project's app."""
    async with runtime.db.sessions() as session:
        apps = {a.provider: a for a in (await session.scalars(select(ProviderApp).where(ProviderApp.project_id == project_id))).all()}
    listed = []
    for name in sorted(set(catalog()) | set(apps)):
        spec = spec_for(name, apps.get(name))
        listed.append(ListedProvider(spec, apps.get(name), is_configured(spec, apps.get(name))))
    return listed


async def list_providers(runtime: Runtime, project_id: str) -> list[tuple[ProviderSpec, bool]]:
    return [(item.spec, item.configured) for item in await project_providers(runtime, project_id)]
