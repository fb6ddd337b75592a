"""Warming a tenant's pod: one warm per tenant at a time (single-flight), with a deadline, and a bounded per-tenant
queue of the requests waiting for it.

A request joins the tenant's queue with `enter` (which starts the warm if none is running, and raises `QueueFull`
at once when the queue is at its bound, before anything was sent to the client). When the warm ends, every waiter
is woken in arrival order with the pod's address, or with the same `WarmFailed` (a failure, or the deadline), so no
waiter can hang. The warm itself is injected (`warm(tenant_id, generation) -> pod address`): this module does no
I/O of its own.
"""

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable

from gateway import metrics

log = logging.getLogger(__name__)


class WarmFailed(Exception):
    def __init__(self, status: int, code: str, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


class QueueFull(Exception):
    pass


class Ticket:
    """One request's place in a tenant's warming queue."""

    def __init__(self, warmer: "Warmer", tenant_id: uuid.UUID) -> None:
        self.warmer = warmer
        self.tenant_id = tenant_id
        self.future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.left = False
        self.handed_off = False  # a background delivery owns it now

    async def ready(self) -> str:
        """The warm pod's address (raises WarmFailed); leaves the queue either way."""
        try:
            return await asyncio.shield(self.future)
        finally:
            self.leave()

    def leave(self) -> None:
        if not self.left:
            self.left = True
            self.warmer._leave(self)


class _Warm:
    def __init__(self) -> None:
        self.queue: deque[Ticket] = deque()
        self.task: asyncio.Task[None] | None = None


class Warmer:
    def __init__(
        self,
        warm: Callable[[uuid.UUID, int], Awaitable[str]],
        *,
        queue_size: int,
        deadline: float,
        on_warm: Callable[[uuid.UUID, int, str], None] | None = None,
    ) -> None:
        self._warm = warm
        self.queue_size = queue_size
        self.deadline = deadline
        self._on_warm = on_warm
        self._warms: dict[uuid.UUID, _Warm] = {}
        self.started = 0  # warms started (for tests and diagnostics)

    def depth(self, tenant_id: uuid.UUID) -> int:
        warm = self._warms.get(tenant_id)
        return len(warm.queue) if warm is not None else 0

    def enter(self, tenant_id: uuid.UUID, generation: int) -> Ticket:
        warm = self._warms.get(tenant_id)
        if warm is None:
            warm = self._warms[tenant_id] = _Warm()
            warm.task = asyncio.create_task(self._run(tenant_id, generation, warm), name=f"warm-{tenant_id}")
            self.started += 1
        elif len(warm.queue) >= self.queue_size:
            metrics.warm_queue_overflow.inc()
            raise QueueFull(f"{len(warm.queue)} requests already wait for this workspace")
        ticket = Ticket(self, tenant_id)
        warm.queue.append(ticket)
        metrics.warm_queue_depth.inc()
        return ticket

    def _leave(self, ticket: Ticket) -> None:
        warm = self._warms.get(ticket.tenant_id)
        if warm is not None and ticket in warm.queue:
            warm.queue.remove(ticket)
        metrics.warm_queue_depth.dec()

    async def _run(self, tenant_id: uuid.UUID, generation: int, warm: _Warm) -> None:
        started = time.perf_counter()
        pod: str | None = None
        error: WarmFailed | None = None
        try:
            pod = await asyncio.wait_for(self._warm(tenant_id, generation), self.deadline)
        except TimeoutError:
            error = WarmFailed(504, "warm_timeout", f"the workspace did not warm within {self.deadline:g}s")
        except asyncio.CancelledError:  # the gateway is stopping: the waiters get an answer, then we stop
            self._wake(warm, None, WarmFailed(503, "shutting_down", "the gateway is shutting down", 1))
            raise
        except WarmFailed as exc:
            error = exc
        except Exception as exc:  # never leave waiters hanging, whatever went wrong
            log.exception("warming %s failed", tenant_id)
            error = WarmFailed(503, "warm_failed", f"warming the workspace failed: {type(exc).__name__}")
        finally:
            if self._warms.get(tenant_id) is warm:
                del self._warms[tenant_id]
        metrics.warm_seconds.labels("ok" if error is None else error.code).observe(time.perf_counter() - started)
        if pod is not None and self._on_warm is not None:
            self._on_warm(tenant_id, generation, pod)
        self._wake(warm, pod, error)

    @staticmethod
    def _wake(warm: _Warm, pod: str | None, error: WarmFailed | None) -> None:
        for ticket in list(warm.queue):  # arrival order: asyncio wakes the waiters in this order
            if not ticket.future.done():
                if error is None:
                    assert pod is not None
                    ticket.future.set_result(pod)
                else:
                    ticket.future.set_exception(error)
                    ticket.future.exception()  # a waiter that already left must not log "never retrieved"

    async def close(self) -> None:
        for warm in list(self._warms.values()):
            if warm.task is not None:
                warm.task.cancel()
