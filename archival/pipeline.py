"""The byte pipelines of archive and restore, shared by the services and ``bench.archive``.

pack:   RocksDB checkpoint directory -> tar -> zstd -> seal -> ``consume(reader)`` (the upload), with the RocksDB
        digest of the same directory computed alongside in a child process.
unpack: ``open_source()`` -> authenticate/decrypt -> zstd -> safe untar into an empty directory, files fsynced as
        they land, then RocksDB must open the result (or, for the full check, the digest of every key and value).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings

from archival import rocks, stages, tarball, untar
from core import sealed


@dataclass(frozen=True)
class Packed:
    stats: sealed.SealStats
    tar_entries: int
    digest: rocks.RocksDigest
    consumed: Any


@dataclass(frozen=True)
class Unpacked:
    opened: sealed.OpenStats
    files: int
    digest: rocks.RocksDigest | None  # only with the full check


# zstd's own worker threads (-1: one per core): compression then runs beside tar, AES and the digest instead of in
# turn with them. Level and format do not change; the frame is standard and any reader opens it.
DEFAULT_ZSTD_THREADS = -1


def zstd_threads() -> int:
    if not settings.configured:
        return DEFAULT_ZSTD_THREADS
    return int(getattr(settings, "ARCHIVE_ZSTD_THREADS", DEFAULT_ZSTD_THREADS))


def pack(
    source: Path,
    consume: Callable[[BinaryIO], Any],
    *,
    tenant_id: uuid.UUID,
    key_id: str,
    key: bytes,
    threads: int | None = None,
) -> Packed:
    zthreads = zstd_threads() if threads is None else threads
    digesting = rocks.DigestProcess(source)

    def produce(out: BinaryIO) -> tuple[sealed.SealStats, int]:
        writer = sealed.SealWriter(
            dst=out, tenant_id=tenant_id, kind=sealed.KIND_ARCHIVE, key_id=key_id, key=key, threads=zthreads
        )
        with writer:
            entries = tarball.write_tar(source, writer)  # type: ignore[arg-type]  # a writable stream
        assert writer.stats is not None
        return writer.stats, entries

    try:
        (stats, entries), consumed = tarball.piped(produce, consume)
    except BaseException:
        digesting.cancel()
        raise
    digest = digesting.result()
    return Packed(stats, entries, digest, consumed)


def unpack(
    open_source: Callable[[], AbstractContextManager[BinaryIO]],
    staged: Path,
    *,
    tenant_id: uuid.UUID,
    key_for: Callable[[str], bytes],
    full_check: bool = False,
    sha256: bool = False,
) -> Unpacked:
    """Four overlapped stages joined by bounded buffers: download (a prefetch thread), authenticate + decrypt +
    decompress (a thread), safe untar (here), fsync of each finished file (a thread). Then RocksDB must open the
    result; ``full_check`` also reads every key and value back for the digest (``Unpacked.digest``, else None).
    """
    syncer = stages.Syncer()

    def produce(out: BinaryIO) -> sealed.OpenStats:
        with open_source() as raw, stages.Prefetch(raw) as src:
            return sealed.open_stream(
                src=src,  # type: ignore[arg-type]  # read() is all it uses
                dst=out,
                tenant_id=tenant_id,
                kind=sealed.KIND_ARCHIVE,
                key_for=key_for,
                sha256=sha256,
            )

    try:
        opened, files = tarball.piped(
            produce, lambda src: untar.safe_extract(src, staged, fsync=False, written=syncer.put), in_process=True
        )
    except BaseException:
        syncer.finish(quiet=True)  # the first error is the story; every queued descriptor is still closed
        raise
    syncer.finish()
    tarball.fsync_tree(staged)
    if full_check:
        return Unpacked(opened, files, rocks.digest(staged))
    rocks.check_opens(staged)
    return Unpacked(opened, files, None)
