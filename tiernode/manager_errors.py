"""Why the tenant manager refused a request; each error carries its HTTP status and error code."""


class ManagerError(Exception):
    status = 409
    code = "conflict"


class StaleGeneration(ManagerError):
    code = "stale_generation"


class UnknownGeneration(ManagerError):
    code = "unknown_generation"


class Draining(ManagerError):
    status = 503
    code = "draining"


class LoadFailed(ManagerError):
    """The store would not open (e.g. another process still holds its lock during a move): worth a retry."""

    status = 503
    code = "load_failed"
