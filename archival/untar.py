"""Extracting an untrusted tar stream: into an existing empty directory, entry by entry, refusing absolute names,
``..``, links of any kind, devices, FIFOs and sparse files, and never following or overwriting anything (files are
created with ``O_EXCL | O_NOFOLLOW``). Any entry the operating system refuses is a refusal too (:class:`TarError`
naming it); a full or failing disk keeps its own ``OSError`` (ENOSPC is not the archive's fault).

The headers are parsed by :mod:`tarfile`; the file data is copied by :class:`_ForwardReader` through one reused
buffer (tarfile's own stream reader allocates and copies each block several times, which was most of a restore).
"""

from __future__ import annotations

import errno
import os
import tarfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from archival.tarball import COPY_CHUNK, TarError, fsync_tree

MAX_ENTRIES = 1_000_000
# Errors of the disk itself, not of an entry: they keep their own name (e.g. ENOSPC) instead of a tar refusal.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS})


class _ForwardReader:
    """A forward-only file over a stream, for tarfile's non-stream mode (``seek`` skips ahead by reading), that
    also lends views of its buffer (:meth:`take`) so file data is never copied into new objects."""

    def __init__(self, src: BinaryIO, size: int = COPY_CHUNK) -> None:
        self._src = src
        self._readinto = getattr(src, "readinto", None)
        self._buf = bytearray(size)
        self._view = memoryview(self._buf)
        self._start = self._end = 0
        self._pos = 0

    def _fill(self) -> bool:
        if self._readinto is not None:
            n = self._readinto(self._view) or 0
        else:
            data = self._src.read(len(self._buf))
            n = len(data)
            self._view[:n] = data
        self._start, self._end = 0, n
        return n > 0

    def take(self, limit: int) -> memoryview:
        """Up to ``limit`` bytes as a view, valid until the next call; empty at the end of the stream."""
        if self._start == self._end and not self._fill():
            return self._view[:0]
        n = min(limit, self._end - self._start)
        view = self._view[self._start : self._start + n]
        self._start += n
        self._pos += n
        return view

    def read(self, n: int = -1) -> bytes:
        out = bytearray()
        while n < 0 or len(out) < n:
            view = self.take(COPY_CHUNK if n < 0 else n - len(out))
            if not view:
                break
            out += view
        return bytes(out)

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_CUR:
            pos += self._pos
        elif whence != os.SEEK_SET:
            raise OSError(errno.ESPIPE, "a tar stream cannot seek from its end")
        if pos < self._pos:
            raise OSError(errno.ESPIPE, "a tar stream cannot seek backwards")
        while self._pos < pos and self.take(pos - self._pos):
            pass
        return self._pos


def safe_extract(
    src: BinaryIO,
    dst_dir: Path,
    *,
    max_entries: int = MAX_ENTRIES,
    fsync: bool = True,
    written: Callable[[int], None] | None = None,
) -> int:
    """Extract the tar stream ``src`` into the existing, empty ``dst_dir``; returns the number of files.

    Reads ``src`` to its end (so a producer writing into a pipe is never left blocked). With ``fsync=False`` nothing
    is fsynced here: the caller must make the tree durable (``fsync_all``, or ``written``: called with a duplicate
    of each finished file's descriptor, which it must close, e.g. after fsyncing it elsewhere).
    """
    dst_dir = Path(dst_dir)
    if any(dst_dir.iterdir()):
        raise TarError(f"extraction target {dst_dir} is not empty")
    root = dst_dir.resolve()
    reader = _ForwardReader(src)
    files = 0
    entries = 0
    try:
        tar = tarfile.open(fileobj=reader, mode="r:")  # type: ignore[call-overload]  # a read()-only stream is enough for "r:"  # noqa: SIM115 - closed below
    except tarfile.TarError as exc:
        raise TarError(f"not a tar stream: {exc}") from exc
    try:
        for member in tar:
            entries += 1
            if entries > max_entries:
                raise TarError(f"archive has more than {max_entries} entries")
            rel = _check_member(member)
            if rel == PurePosixPath("."):
                continue  # the target itself (`tar -C dir .` writes it)
            try:
                if _extract_member(reader, member, root / rel, root, fsync=fsync, written=written):
                    files += 1
            except OSError as exc:
                if exc.errno in DISK_ERRNOS:
                    raise
                raise TarError(f"refused entry {member.name[:200]!r}: {exc.strerror or exc}") from exc
            tar.members.clear()  # tarfile keeps every member it has read: not needed here, and unbounded
    except tarfile.TarError as exc:
        raise TarError(f"malformed tar: {exc}") from exc
    finally:
        tar.close()
    while reader.take(COPY_CHUNK):
        pass
    if fsync:
        fsync_tree(dst_dir)
    return files


def _check_member(member: tarfile.TarInfo) -> PurePosixPath:
    name = member.name
    kind = (
        "symlink"
        if member.issym()
        else "hard link"
        if member.islnk()
        else "fifo"
        if member.isfifo()
        else "device"
        if member.isdev()
        else "sparse file"
        if member.issparse()
        else None
    )
    if kind:
        raise TarError(f"refused entry {name!r}: {kind}s are not allowed in an archive")
    if not (member.isreg() or member.isdir()):
        raise TarError(f"refused entry {name!r}: unsupported type {member.type!r}")
    if not name or "\x00" in name or "\\" in name:
        raise TarError(f"refused entry {name!r}: invalid name")
    path = PurePosixPath(name)
    if path.is_absolute():
        raise TarError(f"refused entry {name!r}: absolute path")
    if ".." in path.parts:
        raise TarError(f"refused entry {name!r}: path escapes the target ('..')")
    parts = [p for p in path.parts if p != "."]
    if not parts:
        if member.isdir():
            return PurePosixPath(".")
        raise TarError(f"refused entry {name!r}: empty path")
    return PurePosixPath(*parts)


def _extract_member(
    reader: _ForwardReader,
    member: tarfile.TarInfo,
    target: Path,
    root: Path,
    *,
    fsync: bool,
    written: Callable[[int], None] | None,
) -> bool:
    """Create one checked entry; True for a file."""
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    # Nothing we create is a link, but make sure nothing on the way is one either.
    if not parent.resolve().is_relative_to(root) or parent.is_symlink():
        raise TarError(f"refused entry {member.name!r}: path escapes the target")
    if member.isdir():
        if target.is_symlink() or (target.exists() and not target.is_dir()):
            raise TarError(f"refused entry {member.name!r}: conflicts with an existing entry")
        target.mkdir(mode=0o755, exist_ok=True)
        return False
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except FileExistsError as exc:
        raise TarError(f"refused entry {member.name!r}: appears twice in the archive") from exc
    with os.fdopen(fd, "wb", buffering=0) as out:
        reader.seek(member.offset_data)
        remaining = member.size
        while remaining:
            data = reader.take(remaining)
            if not data:
                raise TarError(f"truncated tar: {member.name!r} ends early")
            remaining -= len(data)
            while data:  # a raw write may be short
                data = data[out.write(data) or 0 :]
        if fsync:
            os.fsync(fd)
        elif written is not None:
            written(os.dup(fd))
    return True
