"""Fixtures: one sandbox server for the whole run (tests that stop a server start their own)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from support import Sandbox


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    server = Sandbox()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def user_id() -> str:
    """A fresh user id: every test works on its own connections."""
    return f"u_{uuid.uuid4().hex[:12]}"
