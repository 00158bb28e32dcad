"""State every emulator shares: its clock, call counts, injected faults, the response hold
and its settings, plus the gate each provider endpoint passes through first."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
import typing
from collections.abc import Callable
from typing import Any, Generic, Literal, TypeVar

import pydantic
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

CallKind = Literal["authorize", "token", "refresh", "api", "revoke"]
CALL_KINDS: tuple[CallKind, ...] = typing.get_args(CallKind)
FaultMode = Literal["500", "429", "timeout"]

# Builds a provider-shaped error response: (status, retry_after seconds or None) -> response.
FailureBuilder = Callable[[int, int | None], Response]

SettingsT = TypeVar("SettingsT")


class ControlError(Exception):
    """A control API request the emulator refuses; answered 400 with this message."""


class Clock:
    """Wall-clock time plus an offset, so tests can age tokens and codes without sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset


@dataclasses.dataclass
class Fault:
    """The next `remaining` calls (of `kind`, or of any kind when None) fail with `mode`; or,
    when `until` is set (emulator clock), every such call until then: an outage of some minutes."""

    id: int
    mode: FaultMode
    remaining: int
    kind: CallKind | None = None
    retry_after: int = 1
    delay: float = 1.0
    then: Literal["504", "close"] = "504"
    until: float | None = None


class FaultPlan:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, **fields: Any) -> Fault:
        fault = Fault(id=next(self._ids), **fields)
        self._faults.append(fault)
        return fault

    def take(self, kind: CallKind, now: float) -> Fault | None:
        """Consumes one use of the first fault that applies to `kind` (a timed one is not used up)."""
        self._expire(now)
        for fault in self._faults:
            if fault.kind in (None, kind):
                if fault.until is None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                return fault
        return None

    def pending(self, now: float) -> list[Fault]:
        self._expire(now)
        return list(self._faults)

    def _expire(self, now: float) -> None:
        self._faults = [fault for fault in self._faults if fault.until is None or fault.until > now]

    def clear(self) -> int:
        cleared = len(self._faults)
        self._faults.clear()
        return cleared


class Hold:
    """Keeps processed token/refresh responses from being sent until released.

    Waiters poll instead of awaiting an asyncio.Event: the same app may be served by several
    event loops one after the other (one per test server), and an Event binds to the first.
    """

    POLL_SECONDS = 0.01

    def __init__(self) -> None:
        self.kinds: frozenset[CallKind] = frozenset()
        self.waiting = 0
        self._generation = 0

    def engage(self, kinds: frozenset[CallKind]) -> None:
        self.kinds = kinds

    def release(self) -> int:
        released = self.waiting
        self.kinds = frozenset()
        self._generation += 1
        return released

    async def wait(self, kind: CallKind) -> None:
        if kind not in self.kinds:
            return
        generation = self._generation
        self.waiting += 1
        try:
            while self._generation == generation:
                await asyncio.sleep(self.POLL_SECONDS)
        finally:
            self.waiting -= 1


class DroppedResponse(Response):
    """Ends the exchange mid-response: the headers announce a body that never comes.

    ASGI has no "close the connection" message; a server (uvicorn does) closes the connection
    when the app returns with its response incomplete, so the client sees a dropped connection.
    """

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1")]})


class EmulatorCore(Generic[SettingsT]):
    """Clock, counts, faults, hold and settings of one emulator."""

    def __init__(self, settings_type: Callable[[], SettingsT], *, base_url: str | None) -> None:
        self._settings_type = settings_type
        self._base_url = base_url.rstrip("/") if base_url else None
        self.clock = Clock()
        self.faults = FaultPlan()
        self.hold = Hold()
        self.counts: dict[CallKind, int] = dict.fromkeys(CALL_KINDS, 0)
        self.settings = settings_type()

    def reset(self) -> None:
        self.clock.offset = 0.0
        self.faults.clear()
        self.hold.release()
        self.reset_counts()
        self.settings = self._settings_type()

    def reset_counts(self) -> None:
        self.counts = dict.fromkeys(CALL_KINDS, 0)

    def now(self) -> float:
        return self.clock.now()

    def base_url(self, request: Request) -> str:
        """Where the emulator is reachable: as configured, else as the request reached it."""
        return self._base_url or str(request.base_url).rstrip("/")

    async def gate(self, kind: CallKind, failure: FailureBuilder) -> Response | None:
        """Counts the call; returns the injected failure for it, if any, else None."""
        self.counts[kind] += 1
        fault = self.faults.take(kind, self.now())
        if fault is None:
            return None
        if fault.mode == "timeout":
            await asyncio.sleep(fault.delay)
            return DroppedResponse() if fault.then == "close" else failure(504, None)
        status = int(fault.mode)
        return failure(status, fault.retry_after if status == 429 else None)

    def update_settings(self, changes: dict[str, Any]) -> None:
        """Validates every change against the settings dataclass's field types, then applies all."""
        hints = typing.get_type_hints(type(self.settings))
        validated: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in hints:
                raise ControlError(f"unknown setting {name!r}; known: {', '.join(sorted(hints))}")
            try:
                validated[name] = pydantic.TypeAdapter(hints[name]).validate_python(value, strict=True)
            except pydantic.ValidationError as exc:
                raise ControlError(f"{name}: {exc.errors()[0]['msg']}") from None
        for name, value in validated.items():
            setattr(self.settings, name, value)

    def settings_json(self) -> dict[str, Any]:
        values: dict[str, Any] = dataclasses.asdict(self.settings)  # type: ignore[call-overload]
        return values
