"""Steps with visible progress, and the summary table at the end."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO, TypeVar

T = TypeVar("T")


class StepFailed(Exception):
    """A step's check did not hold; the message says what was expected and what happened."""


def wait_for(check: Callable[[], T | bool | None], *, timeout: float, what: str, every: float = 0.3) -> T:
    """Poll `check` until it returns something truthy; StepFailed after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result  # type: ignore[return-value]  # truthy: the awaited object (True only from a bare exists())
        if time.monotonic() > deadline:
            raise StepFailed(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(every)


@dataclass
class Outcome:
    name: str
    ok: bool
    seconds: float
    detail: str


@dataclass
class Runner:
    total: int
    out: TextIO = sys.stdout
    outcomes: list[Outcome] = field(default_factory=list)

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def step(self, name: str, action: Callable[[], str]) -> bool:
        number = len(self.outcomes) + 1
        self.say(f"\n[{number}/{self.total}] {name} ...")
        started = time.monotonic()
        try:
            detail, ok = action(), True
        except StepFailed as exc:
            detail, ok = str(exc), False
        except Exception as exc:  # the demo reports any failure as the step's, and goes on to the summary
            detail, ok = f"{type(exc).__name__}: {exc}", False
        seconds = time.monotonic() - started
        self.outcomes.append(Outcome(name, ok, seconds, detail))
        self.say(f"    {'ok' if ok else 'FAILED'} in {seconds:.1f}s: {detail}")
        return ok

    def summary(self) -> int:
        width = max(len(o.name) for o in self.outcomes)
        self.say("\n" + "=" * (width + 40))
        self.say(f"{'step':<{width}}  result   seconds  detail")
        for o in self.outcomes:
            result = "ok" if o.ok else "FAILED"
            self.say(f"{o.name:<{width}}  {result:<7}  {o.seconds:7.1f}  {o.detail[:90]}")
        failed = sum(1 for o in self.outcomes if not o.ok)
        self.say(f"\n{len(self.outcomes) - failed} of {len(self.outcomes)} steps passed.")
        return 1 if failed else 0
