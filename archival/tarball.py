"""Tar streams in and out, and the pipe that joins a producer thread to a consumer.

Writing: only regular files and directories of the source tree, with relative names, owner and group cleared.
Extracting (the archive is untrusted until proven otherwise): into an existing empty directory, entry by entry,
refusing absolute names, ``..``, links of any kind, devices, FIFOs and sparse files, and never following or
overwriting anything (files are created with ``O_EXCL | O_NOFOLLOW``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import tarfile
import threading
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

COPY_CHUNK = 1 << 20
TAR_BUFSIZE = 1 << 20
PIPE_SIZE = 1 << 20
MAX_ENTRIES = 1_000_000


class TarError(Exception):
    """A tar stream is hostile or malformed, or a source tree holds something that cannot be archived."""


def write_tar(src_dir: Path, dst: BinaryIO) -> int:
    """Stream ``src_dir``'s tree as a tar to ``dst``; returns the number of entries written."""
    count = 0
    with tarfile.open(fileobj=dst, mode="w|", bufsize=TAR_BUFSIZE, format=tarfile.PAX_FORMAT) as tar:
        for root, dirs, files in os.walk(src_dir):
            dirs.sort()
            rel_root = Path(root).relative_to(src_dir)
            for name in [*dirs, *sorted(files)]:
                path = Path(root) / name
                arcname = (rel_root / name).as_posix()
                st = os.lstat(path)
                info = tarfile.TarInfo(arcname)
                info.mtime = int(st.st_mtime)
                info.mode = stat.S_IMODE(st.st_mode) & 0o755
                if stat.S_ISDIR(st.st_mode):
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                elif stat.S_ISREG(st.st_mode):
                    info.size = st.st_size
                    with open(path, "rb") as handle:
                        tar.addfile(info, handle)
                else:
                    raise TarError(f"cannot archive {arcname}: not a regular file or directory")
                count += 1
    return count


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


# Errors of the disk itself, not of an entry: they keep their own name (e.g. ENOSPC) instead of a tar refusal.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS})


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
    is fsynced here: the caller must make the tree durable (:func:`fsync_all`, or ``written``: called with a
    duplicate of each finished file's descriptor, which it must close, e.g. after fsyncing it elsewhere).
    An entry the operating system refuses (a name too long, a path through a file) is a :class:`TarError` naming
    it; a full or failing disk keeps its own ``OSError``.
    """
    dst_dir = Path(dst_dir)
    if any(dst_dir.iterdir()):
        raise TarError(f"extraction target {dst_dir} is not empty")
    root = dst_dir.resolve()
    files = 0
    entries = 0
    try:
        tar = tarfile.open(fileobj=src, mode="r|", bufsize=TAR_BUFSIZE)  # noqa: SIM115 - closed in finally
    except tarfile.TarError as exc:
        raise TarError(f"not a tar stream: {exc}") from exc
    try:
        for member in tar:
            entries += 1
            if entries > max_entries:
                raise TarError(f"archive has more than {max_entries} entries")
            rel = _check_member(member)
            try:
                if _extract_member(tar, member, root / rel, root, fsync=fsync, written=written):
                    files += 1
            except OSError as exc:
                if exc.errno in DISK_ERRNOS:
                    raise
                raise TarError(f"refused entry {member.name[:200]!r}: {exc.strerror or exc}") from exc
    except tarfile.TarError as exc:
        raise TarError(f"malformed tar: {exc}") from exc
    finally:
        tar.close()
    while src.read(COPY_CHUNK):
        pass
    if fsync:
        fsync_tree(dst_dir)
    return files


def _extract_member(
    tar: tarfile.TarFile,
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
    with os.fdopen(fd, "wb") as out:
        reader = tar.extractfile(member)
        assert reader is not None
        remaining = member.size
        while remaining:
            data = reader.read(min(COPY_CHUNK, remaining))
            if not data:
                raise TarError(f"truncated tar: {member.name!r} ends early")
            out.write(data)
            remaining -= len(data)
        out.flush()
        if fsync:
            os.fsync(fd)
        elif written is not None:
            written(os.dup(fd))
    return True


def fsync_tree(path: Path) -> None:
    """fsync every directory under ``path`` (file contents are fsynced as they are written)."""
    for root, _dirs, _files in os.walk(path):
        fd = os.open(root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fsync_all(path: Path) -> None:
    """fsync every file, then every directory, under ``path``."""
    for root, _dirs, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY | os.O_NOFOLLOW)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    fsync_tree(path)


class ProducerFailed(Exception):
    """The consumer's side of :func:`piped` when the producer failed: the stream ended early, it is not an EOF."""


class _PipeReader:
    """The consumer's end of the pipe: an end of stream after a failed producer raises instead of looking complete,
    so a consumer never finishes (stores an object, accepts a tar) on a cut stream."""

    def __init__(self, raw: BinaryIO, outcome: dict[str, Any]) -> None:
        self._raw = raw
        self._outcome = outcome

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        if not data and n != 0 and "error" in self._outcome:
            raise ProducerFailed(f"the stream was cut: {self._outcome['error']!r}")
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._raw.close()


def _caused_by_broken_pipe(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, BrokenPipeError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def piped(producer: Callable[[BinaryIO], Any], consumer: Callable[[BinaryIO], Any]) -> tuple[Any, Any]:
    """Run ``producer(writer)`` in a thread and ``consumer(reader)`` here, joined by a bounded OS pipe.

    Memory stays bounded (the pipe holds ~1 MB); if either side fails the other is unblocked, and the error that
    came first is raised: a consumer that refused the stream wins over the broken pipe (however the producer wrapped
    it) that its refusal caused, and a failed producer wins over the cut stream the consumer then saw.
    """
    r_fd, w_fd = os.pipe()
    with contextlib.suppress(OSError):
        fcntl.fcntl(w_fd, 1031, PIPE_SIZE)  # F_SETPIPE_SZ
    raw_reader = os.fdopen(r_fd, "rb", buffering=COPY_CHUNK)
    writer = os.fdopen(w_fd, "wb", buffering=COPY_CHUNK)
    outcome: dict[str, Any] = {}
    reader = _PipeReader(raw_reader, outcome)

    def run() -> None:
        try:
            outcome["value"] = producer(writer)
            writer.close()
        except BaseException as exc:
            outcome["error"] = exc  # set before the close, so the reader sees it with the end of the stream
            with contextlib.suppress(OSError):
                writer.close()

    thread = threading.Thread(target=run, name="archival-pipe", daemon=True)
    thread.start()
    consumer_error: BaseException | None = None
    result = None
    try:
        result = consumer(reader)  # type: ignore[arg-type]  # read() is all a consumer uses
    except BaseException as exc:
        consumer_error = exc
    finally:
        raw_reader.close()
        thread.join()
    producer_error = outcome.get("error")
    if producer_error is not None and not (consumer_error is not None and _caused_by_broken_pipe(producer_error)):
        raise producer_error
    if consumer_error is not None:
        raise consumer_error
    return outcome.get("value"), result
