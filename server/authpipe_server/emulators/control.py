"""The `/_control` JSON API every emulator mounts, for tests and for `authpipe dev`.

Not part of any real provider: it registers apps and users, revokes grants, injects faults,
holds responses, counts calls and moves the emulator's clock.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Literal, Protocol, TypeVar

import pydantic
from fastapi import APIRouter, HTTPException
from starlette.requests import Request

from .core import CallKind, ControlError, EmulatorCore, FaultMode
from .oauth import ClientApp, OAuthState

ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)


class Controllable(Protocol):
    core: EmulatorCore[Any]

    def reset(self) -> None: ...

    def users_json(self) -> list[dict[str, Any]]: ...

    def create_user(self, payload: Any) -> dict[str, Any]:
        """Raises pydantic.ValidationError or ControlError on a bad payload."""
        ...


class OAuthControllable(Controllable, Protocol):
    oauth: OAuthState
    # Why a grant can be revoked; the first is the default. Facebook answers each differently.
    revoke_reasons: tuple[str, ...]

    def has_user(self, user_id: str) -> bool: ...

    def redirect_uri_registrable(self, uri: str) -> bool: ...


class _Strict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")


class FaultIn(_Strict):
    mode: FaultMode
    count: int = pydantic.Field(1, ge=1)
    seconds: float | None = pydantic.Field(None, gt=0, le=86400)
    """Instead of `count` calls: every call for this long (an outage)."""
    kind: CallKind | None = None
    retry_after: int = pydantic.Field(1, ge=0)
    delay: float = pydantic.Field(1.0, ge=0)
    then: Literal["504", "close"] = "504"

    @pydantic.field_validator("mode", mode="before")
    @classmethod
    def _status_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value


class HoldIn(_Strict):
    kinds: list[CallKind] = ["token", "refresh"]


class TimeIn(_Strict):
    offset: float | None = None
    advance: float | None = None


class AppIn(_Strict):
    client_id: str = pydantic.Field(pattern=r"^[A-Za-z0-9._|-]{1,128}$")
    client_secret: str | None = None  # None: a public client (PKCE only)
    redirect_uris: list[str] = pydantic.Field(min_length=1)
    name: str | None = None


class RevokeIn(_Strict):
    user_id: str
    client_id: str | None = None
    reason: str | None = None


def validate(model: type[ModelT], data: Any) -> ModelT:
    """Parses a control payload; a bad one is answered 422 with pydantic's error list."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise HTTPException(422, detail=json.loads(exc.json(include_url=False))) from None


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise HTTPException(400, detail="the body must be JSON") from None


def control_router(emulator: Controllable) -> APIRouter:
    """Reset, users, settings, faults, hold, counts and time: the controls every emulator has."""
    core = emulator.core
    router = APIRouter(prefix="/_control")

    def hold_json() -> dict[str, Any]:
        return {"active": bool(core.hold.kinds), "kinds": sorted(core.hold.kinds), "waiting": core.hold.waiting}

    def time_json() -> dict[str, float]:
        return {"offset": core.clock.offset, "now": core.now()}

    @router.post("/reset")
    async def reset() -> dict[str, bool]:
        emulator.reset()
        return {"ok": True}

    @router.get("/users")
    async def list_users() -> dict[str, Any]:
        return {"users": emulator.users_json()}

    @router.post("/users", status_code=201)
    async def create_user(request: Request) -> dict[str, Any]:
        payload = await json_body(request)
        try:
            return emulator.create_user(payload)
        except pydantic.ValidationError as exc:
            raise HTTPException(422, detail=json.loads(exc.json(include_url=False))) from None
        except ControlError as exc:
            raise HTTPException(400, detail=str(exc)) from None

    @router.get("/settings")
    async def get_settings() -> dict[str, Any]:
        return core.settings_json()

    @router.patch("/settings")
    async def update_settings(request: Request) -> dict[str, Any]:
        changes = await json_body(request)
        if not isinstance(changes, dict):
            raise HTTPException(400, detail="send an object of settings to change")
        try:
            core.update_settings(changes)
        except ControlError as exc:
            raise HTTPException(400, detail=str(exc)) from None
        return core.settings_json()

    @router.get("/faults")
    async def list_faults() -> dict[str, Any]:
        return {"faults": [dataclasses.asdict(fault) for fault in core.faults.pending(core.now())]}

    @router.post("/faults", status_code=201)
    async def add_fault(request: Request) -> dict[str, Any]:
        spec = validate(FaultIn, await json_body(request))
        fault = core.faults.add(
            mode=spec.mode,
            remaining=spec.count,
            kind=spec.kind,
            retry_after=spec.retry_after,
            delay=spec.delay,
            then=spec.then,
            until=core.now() + spec.seconds if spec.seconds is not None else None,
        )
        return dataclasses.asdict(fault)

    @router.delete("/faults")
    async def clear_faults() -> dict[str, int]:
        return {"cleared": core.faults.clear()}

    @router.get("/hold")
    async def get_hold() -> dict[str, Any]:
        return hold_json()

    @router.post("/hold")
    async def engage_hold(request: Request) -> dict[str, Any]:
        spec = validate(HoldIn, await json_body(request))
        core.hold.engage(frozenset(spec.kinds))
        return hold_json()

    @router.post("/release")
    async def release_hold() -> dict[str, int]:
        return {"released": core.hold.release()}

    @router.get("/counts")
    async def get_counts() -> dict[CallKind, int]:
        return dict(core.counts)

    @router.delete("/counts")
    async def reset_counts() -> dict[CallKind, int]:
        core.reset_counts()
        return dict(core.counts)

    @router.get("/time")
    async def get_time() -> dict[str, float]:
        return time_json()

    @router.post("/time")
    async def set_time(request: Request) -> dict[str, float]:
        spec = validate(TimeIn, await json_body(request))
        if (spec.offset is None) == (spec.advance is None):
            raise HTTPException(400, detail="send exactly one of offset (seconds) or advance (seconds)")
        core.clock.offset = spec.offset if spec.offset is not None else core.clock.offset + (spec.advance or 0.0)
        return time_json()

    return router


def add_app_controls(router: APIRouter, emulator: OAuthControllable) -> None:
    """Client apps and grant revocation, for the OAuth emulators."""
    oauth = emulator.oauth

    @router.get("/apps")
    async def list_apps() -> dict[str, Any]:
        return {"apps": [app.json() for app in oauth.apps.values()]}

    @router.post("/apps", status_code=201)
    async def register_app(request: Request) -> dict[str, Any]:
        spec = validate(AppIn, await json_body(request))
        refused = [uri for uri in spec.redirect_uris if not emulator.redirect_uri_registrable(uri)]
        if refused:
            raise HTTPException(400, detail=f"INVALID_CLIENT: Invalid redirect URI: {', '.join(refused)}")
        app = ClientApp(
            client_id=spec.client_id,
            client_secret=spec.client_secret,
            redirect_uris=tuple(spec.redirect_uris),
            name=spec.name or spec.client_id,
        )
        oauth.register(app)
        return app.json()

    @router.post("/revoke")
    async def revoke_grants(request: Request) -> dict[str, int]:
        spec = validate(RevokeIn, await json_body(request))
        reason = spec.reason or emulator.revoke_reasons[0]
        if reason not in emulator.revoke_reasons:
            raise HTTPException(400, detail=f"reason must be one of: {', '.join(emulator.revoke_reasons)}")
        if not emulator.has_user(spec.user_id):
            raise HTTPException(404, detail=f"no user {spec.user_id!r}")
        return {"revoked_grants": oauth.revoke(spec.user_id, spec.client_id, reason)}
