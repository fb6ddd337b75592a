"""Request ids: the client's `X-Request-Id` when it is safe to pass on, else one of ours."""

import itertools
import os


class RequestIds:
    """Unique request ids without a syscall each (os.urandom per request cost more than the header work): a random
    prefix per gateway process, then a counter. Made when the gateway starts, in the worker process itself."""

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count()

    def next(self) -> bytes:
        return f"{self._prefix}{next(self._counter):016x}".encode()
