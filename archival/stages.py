"""Stages of the restore pipeline that run beside the untar, each behind a bounded buffer.

:class:`Prefetch` reads the object store's stream ahead in a thread (network or disk waits overlap the decryption),
:class:`Syncer` fsyncs each extracted file in a thread as soon as it is written (the write-back overlaps the rest of
the extraction instead of following it, as `tar x; sync` does). Both bound memory by a fixed number of blocks or
descriptors, and both hand their thread's error to the caller.
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import threading
from typing import Any, BinaryIO

CHANNEL_BLOCKS = 16  # of at most a zstd output block (1 MiB) each
PREFETCH_BLOCK = 1 << 20
PREFETCH_BLOCKS = 8  # 8 MiB read ahead at most
SYNC_QUEUE = 64

_END = object()


class Prefetch:
    """A reader over ``src`` whose reads are served from blocks a thread has already read."""

    def __init__(self, src: BinaryIO, *, block: int = PREFETCH_BLOCK, blocks: int = PREFETCH_BLOCKS) -> None:
        self._src = src
        self._block = block
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=blocks)
        self._stop = threading.Event()
        self._buf = memoryview(b"")
        self._done = False
        self._thread = threading.Thread(target=self._run, name="archival-prefetch", daemon=True)

    def __enter__(self) -> Prefetch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Empty):
            while True:  # unblock a thread waiting for room
                self._queue.get_nowait()
        self._thread.join()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                data = self._src.read(self._block)
                if not data:
                    break
                if not self._put(data):
                    return
            self._put(_END)
        except BaseException as exc:
            self._put(exc)

    def read(self, n: int = -1) -> bytes:
        out = bytearray()
        while (n < 0 or len(out) < n) and not self._done:
            if not self._buf:
                item = self._queue.get()
                if item is _END:
                    self._done = True
                    break
                if isinstance(item, BaseException):
                    self._done = True
                    raise item
                self._buf = memoryview(item)
            take = len(self._buf) if n < 0 else min(n - len(out), len(self._buf))
            out += self._buf[:take]
            self._buf = self._buf[take:]
        return bytes(out)


class Syncer:
    """fsync (then close) the file descriptors handed to :meth:`put`, in order, in a thread."""

    def __init__(self, *, depth: int = SYNC_QUEUE) -> None:
        self._queue: queue.Queue[int | None] = queue.Queue(maxsize=depth)
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="archival-fsync", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (fd := self._queue.get()) is not None:
            try:
                if self._error is None:
                    os.fsync(fd)
            except OSError as exc:
                self._error = exc
            finally:
                os.close(fd)

    def put(self, fd: int) -> None:
        if self._error is not None:
            os.close(fd)
            raise self._error
        self._queue.put(fd)

    def finish(self, *, quiet: bool = False) -> None:
        """Wait for every queued descriptor; raise the first fsync error unless ``quiet``."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None and not quiet:
            raise self._error


class Channel:
    """A bounded in-process pipe of byte blocks between two threads: what an OS pipe does for
    :func:`archival.tarball.piped`, without copying every byte into the kernel and back. The writer's side is the
    channel itself (``write``, ``close``); :attr:`reader` is the other end. A reader that closes early makes the
    writer's next ``write`` raise ``BrokenPipeError``, as a pipe does."""

    def __init__(self, *, blocks: int = CHANNEL_BLOCKS) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=blocks)
        self._reader_gone = threading.Event()
        self.reader = _ChannelReader(self)

    def _put(self, item: Any) -> None:
        while True:
            if self._reader_gone.is_set():
                raise BrokenPipeError(errno.EPIPE, "the reading end of the channel is closed")
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if data:
            self._put(data if isinstance(data, bytes) else bytes(data))  # zstd hands over bytes: no copy
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self._put(_END)


class _ChannelReader:
    def __init__(self, channel: Channel) -> None:
        self._channel = channel
        self._block = memoryview(b"")
        self._eof = False

    def _next(self) -> bool:
        while not self._block:
            if self._eof:
                return False
            item = self._channel._queue.get()
            if item is _END:
                self._eof = True
                return False
            self._block = memoryview(item)
        return True

    def readinto(self, buf: memoryview | bytearray) -> int:
        if not self._next():
            return 0
        n = min(len(buf), len(self._block))
        buf[:n] = self._block[:n]
        self._block = self._block[n:]
        return n

    def read(self, n: int = -1) -> bytes:
        out = bytearray()
        while (n < 0 or len(out) < n) and self._next():
            take = len(self._block) if n < 0 else min(n - len(out), len(self._block))
            out += self._block[:take]
            self._block = self._block[take:]
        return bytes(out)

    def close(self) -> None:
        self._channel._reader_gone.set()
        with contextlib.suppress(queue.Empty):
            while True:  # unblock a writer waiting for room
                self._channel._queue.get_nowait()
