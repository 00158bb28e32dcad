"""The sealing format itself (no database): round trips, tampering, and binding to a place."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authpipe_server.vault import DecryptionFailed, MasterKey, Place
from authpipe_server.vault.envelope import HEADER_BYTES, DataKey, read_key_version
from authpipe_server.vault.keys import wrap_context

PLACE = Place("proj_1", "org_acme", "connections", "conn_1", "secrets")
ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_:.@-", min_size=0, max_size=40)
places = st.builds(Place, ids, ids, ids, ids, ids)


@given(plaintext=st.binary(max_size=4096), place=places)
def test_round_trip(plaintext: bytes, place: Place) -> None:
    key = DataKey(os.urandom(32), 7)
    blob = key.seal(plaintext, place.encode())
    assert read_key_version(blob) == 7
    assert key.open(blob, place.encode()) == plaintext


@settings(max_examples=50)
@given(plaintext=st.binary(min_size=1, max_size=256), data=st.data())
def test_any_flipped_bit_fails(plaintext: bytes, data: st.DataObject) -> None:
    key = DataKey(os.urandom(32), 1)
    blob = bytearray(key.seal(plaintext, PLACE.encode()))
    bit = data.draw(st.integers(0, len(blob) * 8 - 1))
    blob[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(DecryptionFailed):
        read_key_version(bytes(blob))  # the header may itself be refused first
        key.open(bytes(blob), PLACE.encode())


def test_every_bit_of_a_token_ciphertext_is_protected() -> None:
    key = DataKey(os.urandom(32), 1)
    blob = key.seal(b"x" * 64, PLACE.encode())
    for bit in range(len(blob) * 8):
        tampered = bytearray(blob)
        tampered[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(DecryptionFailed):
            read_key_version(bytes(tampered))
            key.open(bytes(tampered), PLACE.encode())


@pytest.mark.parametrize(
    "other",
    [
        Place("proj_1", "org_acme", "connections", "conn_2", "secrets"),  # another row
        Place("proj_1", "org_acme", "connections", "conn_1", "refresh"),  # another field
        Place("proj_1", "org_other", "connections", "conn_1", "secrets"),  # another tenant
        Place("proj_2", "org_acme", "connections", "conn_1", "secrets"),  # another project
        Place("proj_1", "org_acme", "provider_apps", "conn_1", "secrets"),  # another table
    ],
)
def test_a_ciphertext_moved_elsewhere_fails(other: Place) -> None:
    key = DataKey(os.urandom(32), 1)
    blob = key.seal(b"token", PLACE.encode())
    with pytest.raises(DecryptionFailed):
        key.open(blob, other.encode())


def test_place_encoding_is_unambiguous() -> None:
    assert Place("a", "bc", "t", "r", "f").encode() != Place("ab", "c", "t", "r", "f").encode()


def test_header_is_authenticated() -> None:
    key = DataKey(os.urandom(32), 1)
    blob = bytearray(key.seal(b"token", PLACE.encode()))
    blob[HEADER_BYTES - 1] ^= 2  # claim another key version
    with pytest.raises(DecryptionFailed):
        key.open(bytes(blob), PLACE.encode())


def test_wrapped_data_key_is_bound_to_its_tenant_and_master_key() -> None:
    kek = MasterKey.generate()
    wrapped = kek.wrap(b"k" * 32, wrap_context("proj_1", "org_acme", 1))
    assert kek.unwrap(wrapped, wrap_context("proj_1", "org_acme", 1)) == b"k" * 32
    with pytest.raises(DecryptionFailed):
        kek.unwrap(wrapped, wrap_context("proj_1", "org_other", 1))
    with pytest.raises(DecryptionFailed):
        MasterKey.generate().unwrap(wrapped, wrap_context("proj_1", "org_acme", 1))


def test_keys_do_not_show_in_repr() -> None:
    raw = os.urandom(32)
    assert raw.hex() not in repr(MasterKey(raw)) and "version" in repr(DataKey(raw, 1))
