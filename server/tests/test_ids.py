"""Ids sort in creation order, also when made in the same millisecond (events written back to
back must list in the order they happened)."""

from __future__ import annotations

import re

from hypothesis import given, strategies as st

from authpipe_server.ids import new_id


def test_ids_made_in_a_burst_sort_in_creation_order() -> None:
    made = [new_id("evt") for _ in range(5000)]  # thousands per millisecond
    assert made == sorted(made)
    assert len(set(made)) == len(made)


@given(st.from_regex(r"[a-z]{1,6}", fullmatch=True))
def test_shape(prefix: str) -> None:
    assert re.fullmatch(rf"{prefix}_[0-9A-HJKMNP-TV-Z]{{26}}", new_id(prefix))
