"""Domain errors raised by services; views map them to HTTP statuses, commands to one-line exits."""


class PlatformError(Exception):
    code = "error"
    http_status = 400

    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class InvalidInput(PlatformError):
    code = "invalid"
    http_status = 400


class NotFound(PlatformError):
    code = "not_found"
    http_status = 404


class Conflict(PlatformError):
    code = "conflict"
    http_status = 409


class StaleGeneration(Conflict):
    code = "stale_generation"


class ForbiddenTransition(Conflict):
    code = "forbidden_transition"
