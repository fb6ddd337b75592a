"""Why a handler could not apply an event; the event is marked failed with the message and retried with backoff."""


class HandlerError(Exception):
    """The event cannot be applied now (the message says why); a later attempt may succeed."""


class WaitingForCheckout(HandlerError):
    """An event about a customer whose checkout has not been processed yet: re-run when it is."""
