"""Tar streams in and out, and the pipe that joins a producer thread to a consumer.

Writing: only regular files and directories of the source tree, with relative names, owner and group cleared.
Extracting is :mod:`archival.untar`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import tarfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

COPY_CHUNK = 1 << 20
TAR_BUFSIZE = 1 << 20
PIPE_SIZE = 1 << 20


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
