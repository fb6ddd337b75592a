"""Schemathesis extensions for the contract run (loaded by the CLI through SCHEMATHESIS_HOOKS).

- Device bodies get real keys (before each call): a public key is valid only if it is a point of the curve's
  prime-order subgroup, which no JSON Schema can say, so generated strings would always be refused (400, as
  documented) and the 201 path, and the device operations the stateful phase reaches through links, would never
  be tested. String key values within the schema's bounds are replaced by fresh Ed25519 / X25519 keys; other
  values (negative cases) are left alone.
- `refused_without_permission`: in the runs without credentials or as a non-staff user
  (PERCOLATE_CONTRACT_EXPECT=refusal), any 2xx is a failure.
"""

import base64
import os
from typing import Any

import schemathesis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

_RAW = (serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


_KEYS = {
    "public_key_signing": lambda: ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(*_RAW),
    "public_key_encryption": lambda: x25519.X25519PrivateKey.generate().public_key().public_bytes(*_RAW),
}
MAX_KEY_TEXT = 1000  # DeviceIn's maxLength: a longer string is a negative case and stays as generated


# before_call rather than map_body: it runs in every phase (the coverage phase does not draw from strategies).
@schemathesis.hook.apply_to(path_regex=r"/devices/$", method="POST")  # type: ignore[attr-defined]
def before_call(context: Any, case: Any, kwargs: Any) -> None:
    if isinstance(case.body, dict):
        for name, make in _KEYS.items():
            value = case.body.get(name)
            if isinstance(value, str) and len(value) <= MAX_KEY_TEXT:
                case.body[name] = _b64url(make())


@schemathesis.check
def refused_without_permission(ctx: Any, response: Any, case: Any) -> bool | None:
    if os.environ.get("PERCOLATE_CONTRACT_EXPECT") != "refusal":
        return None
    if 200 <= response.status_code < 300:
        raise AssertionError(f"{case.method} {case.path} answered {response.status_code} to a caller it must refuse")
    return True
