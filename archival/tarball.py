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

from archival import stages

COPY_CHUNK = 1 << 20
PIPE_SIZE = 1 << 20


class TarError(Exception):
    """A tar stream is hostile or malformed, or a source tree holds something that cannot be archived."""


def write_tar(src_dir: Path, dst: BinaryIO) -> int:
    """Stream ``src_dir``'s tree as a PAX tar to ``dst``; returns the number of entries written.

    tarfile builds the headers; the file data goes from one reused buffer straight to ``dst`` (tarfile's stream
    writer copies every block several times on the way).
    """
    count = 0
    written = 0
    buf = bytearray(COPY_CHUNK)
    view = memoryview(buf)

    def out(data: bytes | memoryview) -> None:
        nonlocal written
        dst.write(data)
        written += len(data)

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
                out(info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape"))
            elif stat.S_ISREG(st.st_mode):
                info.size = st.st_size
                out(info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape"))
                with open(path, "rb", buffering=0) as handle:
                    remaining = st.st_size
                    while remaining:
                        n = handle.readinto(view[: min(COPY_CHUNK, remaining)]) or 0
                        if not n:
                            raise TarError(f"cannot archive {arcname}: it shrank while being read")
                        out(view[:n])
                        remaining -= n
                if st.st_size % tarfile.BLOCKSIZE:
                    out(tarfile.NUL * (tarfile.BLOCKSIZE - st.st_size % tarfile.BLOCKSIZE))
            else:
                raise TarError(f"cannot archive {arcname}: not a regular file or directory")
            count += 1
    out(tarfile.NUL * (2 * tarfile.BLOCKSIZE))  # the end-of-archive marker, then padding to a whole record
    if written % tarfile.RECORDSIZE:
        out(tarfile.NUL * (tarfile.RECORDSIZE - written % tarfile.RECORDSIZE))
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

    def readinto(self, buf: memoryview | bytearray) -> int:
        n = self._raw.readinto(buf) or 0  # type: ignore[attr-defined]  # every end we wrap has it
        if not n and len(buf) and "error" in self._outcome:
            raise ProducerFailed(f"the stream was cut: {self._outcome['error']!r}")
        return n

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


def piped(
    producer: Callable[[BinaryIO], Any], consumer: Callable[[BinaryIO], Any], *, in_process: bool = False
) -> tuple[Any, Any]:
    """Run ``producer(writer)`` in a thread and ``consumer(reader)`` here, joined by a bounded OS pipe (or, with
    ``in_process``, a :class:`archival.stages.Channel` of byte blocks: no copy through the kernel).

    Memory stays bounded (the pipe holds ~1 MB, the channel 16 blocks); if either side fails the other is
    unblocked, and the error that came first is raised: a consumer that refused the stream wins over the broken pipe
    (however the producer wrapped it) that its refusal caused, and a failed producer wins over the cut stream the
    consumer then saw.
    """
    raw_reader: Any
    writer: Any
    if in_process:
        channel = stages.Channel()
        raw_reader, writer = channel.reader, channel
    else:
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
