"""The sealed format: round trips and every corruption the issue lists, property-style where it makes sense."""

import io
import os
import struct
import tracemalloc
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import sealed
from core.sealed import KIND_ARCHIVE, KIND_CONTEXT, SealedError

TENANT = uuid.UUID("11111111-2222-3333-4444-555555555555")
OTHER = uuid.UUID("99999999-2222-3333-4444-555555555555")
KEY = bytes(range(32))
KEY_ID = "tk-test"
CHUNK = 1024


def _keys(key_id: str) -> bytes:
    if key_id != KEY_ID:
        raise KeyError(key_id)
    return KEY


def seal(data: bytes, *, tenant=TENANT, kind=KIND_ARCHIVE, key=KEY, key_id=KEY_ID, chunk_size=CHUNK) -> bytes:
    return sealed.seal_bytes(data=data, tenant_id=tenant, kind=kind, key_id=key_id, key=key, chunk_size=chunk_size)


def unseal(blob: bytes, *, tenant=TENANT, kind=KIND_ARCHIVE, key_for=_keys) -> bytes:
    return sealed.open_bytes(blob=blob, tenant_id=tenant, kind=kind, key_for=key_for)


def split(blob: bytes) -> tuple[bytes, list[bytes]]:
    """(header incl. key check, [framed chunks])."""
    key_id_len = blob[sealed._FIXED.size - 1]
    head = sealed._FIXED.size + key_id_len + sealed.KEYCHECK_BYTES
    pos, frames = head, []
    while pos < len(blob):
        (n,) = struct.unpack(">I", blob[pos : pos + 4])
        frames.append(blob[pos : pos + 4 + n])
        pos += 4 + n
    return blob[:head], frames


# Incompressible, so a few KB give several chunks of CHUNK bytes.
MULTI = os.urandom(5 * CHUNK + 123)


def test_multi_chunk_fixture_really_has_many_chunks() -> None:
    assert len(split(seal(MULTI))[1]) >= 5


@given(data=st.binary(max_size=20_000), chunk_size=st.sampled_from([1024, 4096, 1 << 20]))
@settings(max_examples=60, deadline=None)
def test_round_trip(data: bytes, chunk_size: int) -> None:
    assert unseal(seal(data, chunk_size=chunk_size)) == data


@pytest.mark.parametrize("size", [0, 1, 1023, 1024, 1025, 200_000])
def test_round_trip_sizes_and_stats(size: int) -> None:
    data = os.urandom(size // 2) + b"a" * (size - size // 2)
    out = io.BytesIO()
    stats = sealed.seal_stream(
        src=io.BytesIO(data), dst=out, tenant_id=TENANT, kind=KIND_CONTEXT, key_id=KEY_ID, key=KEY, chunk_size=CHUNK
    )
    blob = out.getvalue()
    assert stats.bytes_in == size and stats.bytes_out == len(blob)
    import hashlib

    assert stats.sha256 == hashlib.sha256(blob).hexdigest()
    back = io.BytesIO()
    ostats = sealed.open_stream(src=io.BytesIO(blob), dst=back, tenant_id=TENANT, kind=KIND_CONTEXT, key_for=_keys)
    assert back.getvalue() == data
    assert ostats.sha256 == stats.sha256 and ostats.bytes_in == len(blob) and ostats.bytes_out == size


def test_same_plaintext_seals_differently() -> None:
    assert seal(b"hello") != seal(b"hello")


def test_read_header() -> None:
    header = sealed.read_header(io.BytesIO(seal(b"x", kind=KIND_CONTEXT)))
    assert (header.version, header.tenant_id, header.kind, header.key_id) == (1, TENANT, KIND_CONTEXT, KEY_ID)


BLOB = seal(MULTI)


@given(pos=st.integers(min_value=0, max_value=len(BLOB) - 1), bit=st.integers(min_value=0, max_value=7))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_flipped_bit_fails(pos: int, bit: int) -> None:
    bad = bytearray(BLOB)
    bad[pos] ^= 1 << bit
    with pytest.raises(SealedError):
        unseal(bytes(bad))


@given(cut=st.integers(min_value=0, max_value=len(BLOB) - 1))
@settings(max_examples=200, deadline=None)
def test_any_truncation_fails(cut: int) -> None:
    with pytest.raises(SealedError):
        unseal(BLOB[:cut])


def test_truncation_at_every_chunk_boundary_says_truncated() -> None:
    head, frames = split(BLOB)
    for n in range(len(frames)):
        with pytest.raises(SealedError, match="truncated"):
            unseal(head + b"".join(frames[:n]))


def test_reordered_chunks_fail() -> None:
    head, frames = split(BLOB)
    swapped = [frames[1], frames[0], *frames[2:]]
    with pytest.raises(SealedError, match="chunk 0 authentication failed"):
        unseal(head + b"".join(swapped))


def test_last_chunk_moved_earlier_fails() -> None:
    head, frames = split(BLOB)
    with pytest.raises(SealedError, match="authentication failed"):
        unseal(head + b"".join([frames[0], frames[-1]]))


@pytest.mark.parametrize("which", [0, 2, -1])
def test_duplicated_chunk_fails(which: int) -> None:
    head, frames = split(BLOB)
    frames = list(frames)
    i = which % len(frames)
    frames.insert(i, frames[i])
    with pytest.raises(SealedError):
        unseal(head + b"".join(frames))


def test_dropped_middle_chunk_fails() -> None:
    head, frames = split(BLOB)
    with pytest.raises(SealedError, match="chunk 2 authentication failed"):
        unseal(head + b"".join(frames[:2] + frames[3:]))


def test_trailing_data_fails() -> None:
    with pytest.raises(SealedError, match="trailing data"):
        unseal(BLOB + b"\x00")


def test_another_tenants_object_fails() -> None:
    with pytest.raises(SealedError, match="wrong tenant"):
        unseal(seal(b"secret", tenant=OTHER))


def test_header_rewritten_to_claim_another_tenant_fails() -> None:
    blob = bytearray(seal(b"secret", tenant=OTHER))
    blob[10:26] = TENANT.bytes
    with pytest.raises(SealedError, match=r"wrong key .*or corrupted header"):
        unseal(bytes(blob))


def test_another_kind_fails() -> None:
    with pytest.raises(SealedError, match="wrong kind"):
        unseal(seal(b"ctx", kind=KIND_CONTEXT), kind=KIND_ARCHIVE)


def test_header_rewritten_to_claim_another_kind_fails() -> None:
    blob = bytearray(seal(b"ctx", kind=KIND_CONTEXT))
    blob[9] = KIND_ARCHIVE
    with pytest.raises(SealedError, match="corrupted header"):
        unseal(bytes(blob))


def test_unknown_version_fails() -> None:
    blob = bytearray(BLOB)
    blob[8] = 2
    with pytest.raises(SealedError, match="unknown version 2"):
        unseal(bytes(blob))


def test_bad_magic_fails() -> None:
    with pytest.raises(SealedError, match="bad magic"):
        unseal(b"NOTSEALED" + BLOB[9:])
    with pytest.raises(SealedError, match="bad magic"):
        unseal(b"")


def test_wrong_key_fails() -> None:
    with pytest.raises(SealedError, match="wrong key for key id tk-test"):
        unseal(BLOB, key_for=lambda key_id: os.urandom(32))


def test_unknown_key_id_fails() -> None:
    with pytest.raises(SealedError, match="no key for key id tk-other"):
        unseal(seal(b"x", key_id="tk-other"))


def test_rotated_key_still_opens_by_key_id() -> None:
    old_key, new_key = os.urandom(32), os.urandom(32)
    keys = {"tk-old": old_key, "tk-new": new_key}
    old = seal(b"old data", key=old_key, key_id="tk-old")
    new = seal(b"new data", key=new_key, key_id="tk-new")
    assert unseal(old, key_for=keys.__getitem__) == b"old data"
    assert unseal(new, key_for=keys.__getitem__) == b"new data"


def test_impossible_chunk_length_fails_without_allocating() -> None:
    head, _frames = split(BLOB)
    with pytest.raises(SealedError, match="impossible length"):
        unseal(head + struct.pack(">I", 0xFFFFFFF0) + b"x" * 10)


def test_bad_inputs_refused() -> None:
    with pytest.raises(SealedError, match="32 bytes"):
        seal(b"x", key=b"short")
    with pytest.raises(SealedError, match="unknown kind"):
        seal(b"x", kind=9)


class _Zeros:
    def __init__(self, total: int) -> None:
        self.left = total

    def read(self, n: int) -> bytes:
        n = min(n, self.left)
        self.left -= n
        return os.urandom(n // 4) + bytes(n - n // 4)


class _Sink:
    def __init__(self) -> None:
        self.buf = bytearray()

    def write(self, data: bytes) -> int:
        return len(data)


def test_memory_stays_bounded_when_streaming() -> None:
    total = 64 << 20
    tracemalloc.start()
    try:
        sealed.seal_stream(src=_Zeros(total), dst=_Sink(), tenant_id=TENANT, kind=KIND_ARCHIVE, key_id=KEY_ID, key=KEY)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 12 << 20, peak
