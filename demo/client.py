"""What the demo does as a client would: a device's keys and self-signed token, chats through the gateway."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from gateway.auth.tokens import AUDIENCE


@dataclass
class DeviceKeys:
    signing: Ed25519PrivateKey
    public_signing: str
    public_encryption: str

    @classmethod
    def generate(cls) -> DeviceKeys:
        def b64(key: Any) -> str:
            raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            return base64.urlsafe_b64encode(raw).decode().rstrip("=")

        signing = Ed25519PrivateKey.generate()
        return cls(signing, b64(signing), b64(X25519PrivateKey.generate()))

    def token(self, *, device_id: uuid.UUID, tenant_id: uuid.UUID, ttl: int = 300) -> str:
        """The device's own assertion: issued and signed by the device (kid and iss are its id)."""
        now = int(time.time())
        claims = {"sub": str(tenant_id), "aud": AUDIENCE, "iss": str(device_id), "iat": now, "exp": now + ttl}
        return jwt.encode(claims, self.signing, algorithm="EdDSA", headers={"kid": str(device_id)})


@dataclass
class Answer:
    status: int
    model: str
    text: str
    retry_after: str | None = None


def chat(gateway: str, token: str, message: str, *, timeout: float = 30) -> Answer:
    """One non-streaming chat completion through the gateway."""
    body = json.dumps({"messages": [{"role": "user", "content": message}]}).encode()
    request = urllib.request.Request(  # noqa: S310 (the demo's own gateway URL)
        f"{gateway}/v1/chat/completions",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            doc = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, "", exc.read(2000).decode(errors="replace"), exc.headers.get("Retry-After"))
    return Answer(200, str(doc.get("model", "")), str(doc["choices"][0]["message"]["content"]))
