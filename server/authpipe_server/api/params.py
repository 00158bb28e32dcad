"""The contract's id rules as reusable annotated types (anything else is a 400)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import StringConstraints

from authpipe_server.api.examples import CONNECTION_ID_EXAMPLES

ID_PATTERN = r"^[A-Za-z0-9._:@-]{1,256}$"
PROVIDER_PATTERN = r"^[a-z0-9-]{2,64}$"

TenantId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
UserId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
ProviderName = Annotated[str, StringConstraints(pattern=PROVIDER_PATTERN)]

TenantQuery = Annotated[str, Query(pattern=ID_PATTERN)]
UserQuery = Annotated[str, Query(pattern=ID_PATTERN)]
ProviderQuery = Annotated[str, Query(pattern=PROVIDER_PATTERN)]
ConnectionIdPath = Annotated[
    str, Path(pattern=r"^conn_[0-9A-Z]{26}$", description="The connection's id (`conn_…`)", openapi_examples=CONNECTION_ID_EXAMPLES)
]
Limit = Annotated[int, Query(ge=1, le=100, description="At most this many items (1–100)")]
Cursor = Annotated[str | None, Query(max_length=64, description="`next_cursor` of the previous page; leave out for the first page")]
