"""The two credentials a tier pod accepts, as pure functions (the tier node imports this without Django).

- The **service credential** (`PLATFORM_SERVICE_TOKEN`) opens the pod's internal listener (`/internal/...`): the
  platform, the workers and the gateway's own pod calls (warm, deliver) present it.
- The **proxy credential** opens the pod's public listener (`/v1/chat/completions`): the gateway attaches it to the
  client requests it forwards. It is derived from the service credential with HMAC, so it needs no secret of its
  own, and it is one-way: a pod or a log that sees it learns nothing that opens the internal listener.
"""

import hashlib
import hmac

PROXY_CONTEXT = b"percolate tier pod proxy credential v1"


def proxy_credential(service_token: str) -> str:
    return hmac.new(service_token.encode(), PROXY_CONTEXT, hashlib.sha256).hexdigest()


def bearer(token: str) -> bytes:
    return f"Bearer {token}".encode()
