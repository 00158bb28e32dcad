"""The emulators' state across sandbox restarts.

The emulators keep their users, apps and grants in memory. Without this, a restarted sandbox
would have forgotten every grant it issued, and Authpipe's next check or refresh of an existing
sandbox connection would find it revoked: a sandbox that breaks by being restarted. So the state
is written to `.authpipe/emulators.pickle` (mode 0600) every few seconds while it changes and at
shutdown, and read back at start.

Pickle, not JSON: the state is the emulators' own dataclasses and models, and it is read only from
the sandbox's private data directory, which also holds the master key (whoever can write there
already owns the sandbox). A file that cannot be read (written by another version, say) is set
aside with one warning, and the emulators start afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
from pathlib import Path
from typing import Any, AsyncIterator, Mapping

log = logging.getLogger(__name__)

STATE_FILE = "emulators.pickle"
SAVE_EVERY = 5.0
TRANSIENT = ("core",)
"""Not kept: clock offset, injected faults, held responses and call counts belong to one run."""


def snapshot(emulators: Mapping[str, Any]) -> bytes:
    return pickle.dumps(
        {name: {key: value for key, value in vars(emulator).items() if key not in TRANSIENT} for name, emulator in emulators.items()}
    )


def save(emulators: Mapping[str, Any], data_dir: Path) -> bytes:
    """Write the state atomically (a crash mid-write leaves the previous file); returns it."""
    state = snapshot(emulators)
    path = data_dir / STATE_FILE
    partial = path.with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(state)
    os.replace(partial, path)
    return state


def load(emulators: Mapping[str, Any], data_dir: Path) -> bool:
    """Restore the emulators' state from the last run; False when there is none to restore."""
    path = data_dir / STATE_FILE
    try:
        state = pickle.loads(path.read_bytes())
        restored = {name: dict(values) for name, values in state.items() if name in emulators}
    except FileNotFoundError:
        return False
    except Exception as exc:  # noqa: BLE001 - any unreadable file means the same: start afresh
        aside = path.with_suffix(".unreadable")
        os.replace(path, aside)
        log.warning("the emulators' saved state could not be read (%s); moved to %s, starting them afresh", type(exc).__name__, aside)
        return False
    for name, values in restored.items():
        vars(emulators[name]).update(values)
    return True


@contextlib.asynccontextmanager
async def kept(emulators: Mapping[str, Any], data_dir: Path) -> AsyncIterator[None]:
    """Restore the state, then save it whenever it changed (checked every SAVE_EVERY seconds)
    and once more at shutdown."""
    load(emulators, data_dir)
    stop = asyncio.Event()

    async def keep_saving() -> None:
        last = snapshot(emulators)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SAVE_EVERY)
            if snapshot(emulators) != last:
                last = save(emulators, data_dir)

    task = asyncio.create_task(keep_saving(), name="sandbox-emulator-state")
    try:
        yield
    finally:
        stop.set()
        await task
        save(emulators, data_dir)
