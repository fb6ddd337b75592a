"""Sealed objects: the one format for tenant archives and context blobs (pure Python, no Django).

Layout (all integers big-endian)::

    header   = MAGIC(8) | version(1) | kind(1) | tenant_id(16) | nonce_prefix(8) | key_id_len(1) | key_id
    keycheck = 16 bytes, HKDF output: proves the key opens this header before any chunk is read
    chunk*   = length(4) | AES-256-GCM(ciphertext || tag)

The plaintext of the chunks, concatenated, is one zstd frame (level 3, content checksum on); the last chunk's
plaintext additionally ends with the 8-byte uncompressed length, so a truncated frame inside authentic chunks is
still caught.

Per object the AES key and the key check come from HKDF-SHA256(tenant data key, salt=nonce_prefix, info=header):
every object has its own key, and a header changed in any byte (tenant, kind, version, key id, nonce prefix) yields a
different key. Chunk ``i`` uses nonce ``nonce_prefix || i`` (32-bit counter) and associated data
``sha256(header) || i (8 bytes) || last-flag (1 byte)``: a flipped byte, a chunk moved, dropped or repeated, a stream
cut at a chunk boundary, and data after the last chunk all fail with :class:`SealedError`. Memory is bounded by a few
chunks whatever the object's size.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"PRCLSEAL"
VERSION = 1
KIND_ARCHIVE = 1
KIND_CONTEXT = 2
KINDS = {KIND_ARCHIVE: "archive", KIND_CONTEXT: "context"}

DEFAULT_CHUNK_SIZE = 1 << 20
MAX_CHUNK_SIZE = 16 << 20
NONCE_PREFIX_BYTES = 8
KEYCHECK_BYTES = 16
TAG_BYTES = 16
TRAILER = struct.Struct(">Q")
_LEN = struct.Struct(">I")
_FIXED = struct.Struct(">8sBB16s8sB")  # magic, version, kind, tenant id, nonce prefix, key id length
MAX_CHUNKS = 1 << 32
ZSTD_LEVEL = 3
_HKDF_INFO = b"percolate sealed object v1\x00"


class SealedError(Exception):
    """A sealed object could not be written or opened; the message says what failed."""


@dataclass(frozen=True)
class Header:
    version: int
    tenant_id: uuid.UUID
    kind: int
    key_id: str
    nonce_prefix: bytes = b""

    def encode(self) -> bytes:
        key_id = self.key_id.encode()
        if not 0 < len(key_id) < 256:
            raise SealedError("key id must be 1..255 bytes")
        return (
            _FIXED.pack(MAGIC, self.version, self.kind, self.tenant_id.bytes, self.nonce_prefix, len(key_id)) + key_id
        )


@dataclass(frozen=True)
class SealStats:
    bytes_in: int
    bytes_out: int
    sha256: str
    seal_id: str = ""  # the header's random nonce prefix (hex): names this object, and the seal authenticates it


@dataclass(frozen=True)
class OpenStats:
    header: Header
    bytes_in: int  # sealed bytes read
    bytes_out: int  # plaintext written
    sha256: str  # of the sealed bytes read ("" when not asked for: the chunks' tags already prove them)


def _derive(key: bytes, header: Header, header_bytes: bytes) -> tuple[AESGCM, bytes]:
    if not isinstance(key, bytes | bytearray) or len(key) != 32:
        raise SealedError("the tenant data key must be 32 bytes")
    okm = HKDF(
        algorithm=hashes.SHA256(), length=32 + KEYCHECK_BYTES, salt=header.nonce_prefix, info=_HKDF_INFO + header_bytes
    ).derive(bytes(key))
    return AESGCM(okm[:32]), okm[32:]


def _aad(header_digest: bytes, index: int, last: bool) -> bytes:
    return header_digest + index.to_bytes(8, "big") + (b"\x01" if last else b"\x00")


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + index.to_bytes(4, "big")


class _HashingWriter:
    """Writes to dst, counting and hashing what passes."""

    def __init__(self, dst: BinaryIO) -> None:
        self.dst = dst
        self.count = 0
        self.hash = hashlib.sha256()

    def write(self, data: bytes | memoryview) -> int:
        self.hash.update(data)
        self.dst.write(data)
        self.count += len(data)
        return len(data)


class SealWriter(io.RawIOBase):
    """A writable file: whatever is written is compressed, encrypted in chunks and written to ``dst``.

    Call :meth:`close` (or use it as a context manager) to write the last chunk; :attr:`stats` is then set. A
    ``with`` block left by an exception aborts instead (:meth:`abort`): no last chunk is ever written after a failure.
    """

    def __init__(
        self,
        *,
        dst: BinaryIO,
        tenant_id: uuid.UUID,
        kind: int,
        key_id: str,
        key: bytes,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        threads: int = 0,
    ) -> None:
        super().__init__()
        if kind not in KINDS:
            raise SealedError(f"unknown kind {kind}")
        if not 1024 <= chunk_size <= MAX_CHUNK_SIZE - TRAILER.size:
            raise SealedError(f"chunk size {chunk_size} out of range")
        self._out = _HashingWriter(dst)
        self._chunk_size = chunk_size
        self.header = Header(VERSION, _as_uuid(tenant_id), kind, key_id, os.urandom(NONCE_PREFIX_BYTES))
        header_bytes = self.header.encode()
        self._aead, keycheck = _derive(key, self.header, header_bytes)
        self._header_digest = hashlib.sha256(header_bytes).digest()
        self._out.write(header_bytes + keycheck)
        self._pending = (
            bytearray()
        )  # compressed bytes not yet sealed; one chunk is held back until we know more follows
        self._index = 0
        self.bytes_in = 0
        self.stats: SealStats | None = None
        cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True, threads=threads)
        self._zw = cctx.stream_writer(_ChunkSink(self), write_size=chunk_size, closefd=False)  # type: ignore[arg-type]  # any object with write() will do

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]  # narrower than Buffer: what zstd takes
        n = len(data)
        if n:
            self._zw.write(data)
            self.bytes_in += n
        return n

    def _seal(self, plaintext: bytes | bytearray, last: bool) -> None:
        if self._index >= MAX_CHUNKS:
            raise SealedError("object too large: chunk counter exhausted")
        ct = self._aead.encrypt(
            _nonce(self.header.nonce_prefix, self._index),
            bytes(plaintext),
            _aad(self._header_digest, self._index, last),
        )
        self._out.write(_LEN.pack(len(ct)) + ct)
        self._index += 1

    def _take_compressed(self, data: bytes) -> None:
        self._pending += data
        # Seal full chunks, always keeping at least one byte back so the final chunk is known only at close.
        while len(self._pending) > self._chunk_size:
            self._seal(self._pending[: self._chunk_size], last=False)
            del self._pending[: self._chunk_size]

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()

    def abort(self) -> None:
        """Stop without the last chunk: what was written so far can never open as a complete object."""
        self._aborted = True
        super().close()

    def close(self) -> None:
        if self.closed:
            return
        if getattr(self, "_aborted", False):
            raise SealedError("the writer was aborted")
        try:
            self._zw.close()  # flushes the frame end (and its checksum) into _take_compressed
            self._seal(bytes(self._pending) + TRAILER.pack(self.bytes_in), last=True)
            self._pending = bytearray()
            self.stats = SealStats(
                self.bytes_in, self._out.count, self._out.hash.hexdigest(), self.header.nonce_prefix.hex()
            )
        finally:
            super().close()


class _ChunkSink:
    def __init__(self, writer: SealWriter) -> None:
        self._writer = writer

    def write(self, data: bytes) -> int:
        self._writer._take_compressed(data)
        return len(data)

    def flush(self) -> None:
        pass


def _as_uuid(value: uuid.UUID | str) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _read_exact(src: BinaryIO, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        got = src.read(n - len(buf))
        if not got:
            break
        buf += got
    return bytes(buf)


class _HashingReader:
    def __init__(self, src: BinaryIO, *, hashing: bool = True) -> None:
        self.src = src
        self.count = 0
        self.hash = hashlib.sha256() if hashing else None

    def read(self, n: int) -> bytes:
        data = _read_exact(self.src, n)
        if self.hash is not None:
            self.hash.update(data)
        self.count += len(data)
        return data


def _parse_header(src: _HashingReader | BinaryIO) -> tuple[Header, bytes]:
    fixed = _read_exact(src, _FIXED.size) if not isinstance(src, _HashingReader) else src.read(_FIXED.size)
    if len(fixed) < len(MAGIC) or fixed[: len(MAGIC)] != MAGIC:
        raise SealedError("bad magic: not a sealed object")
    if len(fixed) < _FIXED.size:
        raise SealedError("truncated header")
    _magic, version, kind, tenant_bytes, prefix, key_id_len = _FIXED.unpack(fixed)
    if version != VERSION:
        raise SealedError(f"unknown version {version} (this reader knows {VERSION})")
    reader = src.read if isinstance(src, _HashingReader) else (lambda n: _read_exact(src, n))
    raw_key_id = reader(key_id_len)
    if len(raw_key_id) < key_id_len or key_id_len == 0:
        raise SealedError("truncated header")
    try:
        key_id = raw_key_id.decode()
    except UnicodeDecodeError as exc:
        raise SealedError("corrupted header: key id is not UTF-8") from exc
    return Header(version, uuid.UUID(bytes=tenant_bytes), kind, key_id, prefix), fixed + raw_key_id


def read_header(src: BinaryIO) -> Header:
    """The header of a sealed object (unauthenticated: use it to pick a key, never to trust the object)."""
    return _parse_header(src)[0]


class _DecompressSink:
    def __init__(self, dst: BinaryIO) -> None:
        self.dst = dst
        self.count = 0

    def write(self, data: bytes) -> int:
        self.dst.write(data)
        self.count += len(data)
        return len(data)

    def flush(self) -> None:
        pass


def open_stream(
    *,
    src: BinaryIO,
    dst: BinaryIO,
    tenant_id: uuid.UUID,
    kind: int,
    key_for: Callable[[str], bytes],
    sha256: bool = True,
) -> OpenStats:
    """Authenticate, decrypt and decompress ``src`` into ``dst``; raise SealedError on any mismatch.

    ``sha256=False`` skips the whole-object SHA-256 (a second pass over every byte that the chunk tags make
    redundant for opening: it only names the object, e.g. to compare with a manifest).

    Plaintext reaches ``dst`` chunk by chunk, each authenticated before it is written; a caller must still treat the
    output as untrusted until this function returns (a later chunk may fail), e.g. write it to a temporary place.
    """
    reader = _HashingReader(src, hashing=sha256)
    header, header_bytes = _parse_header(reader)
    if header.tenant_id != _as_uuid(tenant_id):
        raise SealedError(f"wrong tenant: object belongs to {header.tenant_id}, expected {tenant_id}")
    if header.kind != kind:
        raise SealedError(
            f"wrong kind: object is {KINDS.get(header.kind, header.kind)}, expected {KINDS.get(kind, kind)}"
        )
    try:
        key = key_for(header.key_id)
    except SealedError:
        raise
    except Exception as exc:
        raise SealedError(f"no key for key id {header.key_id}: {exc}") from exc
    aead, keycheck = _derive(key, header, header_bytes)
    stored = reader.read(KEYCHECK_BYTES)
    if len(stored) < KEYCHECK_BYTES:
        raise SealedError("truncated header")
    if not hmac.compare_digest(stored, keycheck):
        raise SealedError(f"wrong key for key id {header.key_id} (or corrupted header)")
    header_digest = hashlib.sha256(header_bytes).digest()
    sink = _DecompressSink(dst)
    dctx = zstandard.ZstdDecompressor()
    zw = dctx.stream_writer(sink, write_size=1 << 20, closefd=False)  # type: ignore[arg-type]  # any object with write() will do
    index = 0
    while True:
        raw_len = reader.read(_LEN.size)
        if not raw_len:
            raise SealedError(f"truncated: stream ends after chunk {index - 1} without the last chunk")
        if len(raw_len) < _LEN.size:
            raise SealedError(f"truncated: chunk {index} length cut short")
        (length,) = _LEN.unpack(raw_len)
        if not TAG_BYTES <= length <= MAX_CHUNK_SIZE + TAG_BYTES:
            raise SealedError(f"corrupted: chunk {index} has impossible length {length}")
        ct = reader.read(length)
        if len(ct) < length:
            raise SealedError(f"truncated: chunk {index} cut short ({len(ct)} of {length} bytes)")
        nonce = _nonce(header.nonce_prefix, index)
        last = False
        try:
            plain = aead.decrypt(nonce, ct, _aad(header_digest, index, False))
        except InvalidTag:
            try:
                plain = aead.decrypt(nonce, ct, _aad(header_digest, index, True))
                last = True
            except InvalidTag:
                raise SealedError(
                    f"chunk {index} authentication failed (corrupted, reordered or duplicated chunk)"
                ) from None
        if last:
            if len(plain) < TRAILER.size:
                raise SealedError("corrupted: last chunk too short for its trailer")
            (expected_out,) = TRAILER.unpack(plain[-TRAILER.size :])
            plain = plain[: -TRAILER.size]
        try:
            if plain:
                zw.write(plain)
        except zstandard.ZstdError as exc:
            raise SealedError(f"decompression failed in chunk {index}: {exc}") from exc
        index += 1
        if last:
            break
    try:
        zw.flush()
    except zstandard.ZstdError as exc:
        raise SealedError(f"decompression failed: {exc}") from exc
    if sink.count != expected_out:
        raise SealedError(f"truncated payload: {sink.count} bytes decompressed, {expected_out} sealed")
    if src.read(1):
        raise SealedError("trailing data after the last chunk")
    return OpenStats(header, reader.count, sink.count, reader.hash.hexdigest() if reader.hash else "")


def seal_stream(
    *,
    src: BinaryIO,
    dst: BinaryIO,
    tenant_id: uuid.UUID,
    kind: int,
    key_id: str,
    key: bytes,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    threads: int = 0,
) -> SealStats:
    """Compress and encrypt everything ``src`` yields into ``dst``, in bounded memory."""
    writer = SealWriter(
        dst=dst, tenant_id=tenant_id, kind=kind, key_id=key_id, key=key, chunk_size=chunk_size, threads=threads
    )
    with writer:
        while True:
            data = src.read(chunk_size)
            if not data:
                break
            writer.write(data)
    assert writer.stats is not None
    return writer.stats


def seal_bytes(
    *, data: bytes, tenant_id: uuid.UUID, kind: int, key_id: str, key: bytes, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> bytes:
    out = io.BytesIO()
    seal_stream(
        src=io.BytesIO(data), dst=out, tenant_id=tenant_id, kind=kind, key_id=key_id, key=key, chunk_size=chunk_size
    )
    return out.getvalue()


def open_bytes(*, blob: bytes, tenant_id: uuid.UUID, kind: int, key_for: Callable[[str], bytes]) -> bytes:
    out = io.BytesIO()
    open_stream(src=io.BytesIO(blob), dst=out, tenant_id=tenant_id, kind=kind, key_for=key_for)
    return out.getvalue()
