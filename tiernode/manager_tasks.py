"""Where the tenant manager's work runs: background tasks it must be able to wait for, and threads for the disk."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class Background:
    """Tasks started and not awaited by whoever started them (closes, key prefetches, loads), kept so that
    ``settle`` can wait for all of them, including those they start in turn."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def settle(self) -> None:
        """Return once no task is left running (their exceptions stay with whoever awaits them)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class DiskThreads:
    """The blocking store work (open, close, snapshot, seal) runs here, off the event loop."""

    def __init__(self, max_workers: int = 8) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="tenant-disk")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)
