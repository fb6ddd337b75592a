"""OpenAI-compatible chat completions with a deterministic reply built from the tenant's stored memory.

A real Percolate node puts a model where ``compose_reply`` is; everything around it (request and response shapes,
SSE framing, storing the exchange) is what the gateway and the clients rely on.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from tiernode.store import TenantStore

DEFAULT_MODEL = "percolate-reference"
ROLES = {"system", "user", "assistant", "tool", "developer"}


class ChatRequestError(ValueError):
    pass


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: list[dict[str, str]]
    stream: bool
    include_usage: bool = False  # stream_options.include_usage: a last chunk with the usage, as OpenAI's API

    @property
    def last_user_message(self) -> str:
        for message in reversed(self.messages):
            if message["role"] == "user":
                return message["content"]
        raise ChatRequestError("messages must contain a user message")


def parse_request(body: Any) -> ChatRequest:
    if not isinstance(body, dict):
        raise ChatRequestError("the body must be a JSON object")
    model = body.get("model", DEFAULT_MODEL)
    if not isinstance(model, str) or not model or len(model) > 200:
        raise ChatRequestError("model must be a non-empty string")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ChatRequestError("stream must be a boolean")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise ChatRequestError("stream_options must be an object")
    include_usage = (options or {}).get("include_usage", False)
    if not isinstance(include_usage, bool):
        raise ChatRequestError("stream_options.include_usage must be a boolean")
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise ChatRequestError("messages must be a non-empty list")
    messages = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise ChatRequestError(f"messages[{i}] must be an object with a role in {sorted(ROLES)}")
        messages.append({"role": m["role"], "content": _text(m.get("content"), i)})
    req = ChatRequest(model=model, messages=messages, stream=stream, include_usage=stream and include_usage)
    req.last_user_message  # noqa: B018 - validates there is one
    return req


def _text(content: Any, i: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text ones
        parts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if all(isinstance(p, str) for p in parts):
            return "".join(parts)
    if content is None:
        return ""
    raise ChatRequestError(f"messages[{i}].content must be a string or a list of text parts")


def compose_reply(store: TenantStore, user_message: str) -> str:
    """Deterministic: the same memory and message give the same reply."""
    previous = [m for m in store.recent_messages(20) if m["role"] == "user" and m["content"] != user_message]
    parts = [f"I have {store.message_count} messages of ours on record."]
    if store.facts:
        facts = "; ".join(v if k.startswith("note:") else f"{k}: {v}" for k, v in sorted(store.facts.items()))
        parts.append(f"I remember: {facts}.")
    if store.preferences:
        prefs = ", ".join(f"you {verb} {item}" for item, verb in sorted(store.preferences.items()))
        parts.append(f"Preferences: {prefs}.")
    if previous:
        parts.append(f'Last time you said: "{_clip(previous[-1]["content"])}".')
    parts.append(f'You said: "{_clip(user_message)}".')
    return " ".join(parts)


def _clip(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tokens(reply: str) -> list[str]:
    """Word tokens with their leading space, so joining the deltas gives back the reply exactly."""
    words = reply.split(" ")
    return [words[0]] + [" " + w for w in words[1:]]


def completion_id(tenant_id: str, seq: int) -> str:
    return "chatcmpl-" + hashlib.sha256(f"{tenant_id}:{seq}".encode()).hexdigest()[:24]


def usage(prompt: str, reply: str) -> dict[str, int]:
    p, c = len(prompt.split()), len(tokens(reply))
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def completion(*, cid: str, model: str, reply: str, prompt: str, created: int | None = None) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion",
        "created": created or int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
        "usage": usage(prompt, reply),
    }


def chunk(
    *,
    cid: str,
    model: str,
    created: int,
    delta: dict[str, str] | None,
    finish: str | None = None,
    usage: dict[str, int] | None = None,
    with_usage: bool = False,
) -> bytes:
    """One SSE chunk. With `with_usage` (include_usage was asked for), every chunk has a `usage` key, null but on
    the last one, which has no choices (`delta` None) and the usage, as OpenAI's API streams it."""
    doc: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}
    doc["choices"] = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    if with_usage:
        doc["usage"] = usage
    return b"data: " + json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"


DONE = b"data: [DONE]\n\n"


def store_exchange(store: TenantStore, user_message: str) -> tuple[str, int]:
    """Store the user's message, learn from it, compose the reply and store it; returns (reply, reply seq)."""
    store.append_message("user", user_message)
    store.remember(user_message)
    reply = compose_reply(store, user_message)
    seq = store.append_message("assistant", reply)
    return reply, seq


def deliver_exchange(store: TenantStore, request_id: str, user_message: str, reply: str) -> tuple[int, bool]:
    """Store a message the gateway answered while the tenant was cold (with the answer it gave), once per request id.

    Returns (seq of the user message, True if stored now / False if it was already delivered). Runs without an
    await between the check and the writes, so concurrent repeats on one event loop cannot both store it.
    """
    seen = store.delivered_seq(request_id)
    if seen is not None:
        return seen, False
    with store.atomic():  # the exchange and its delivery marker together: a retry after a crash cannot repeat it
        seq = store.append_message("user", user_message)
        store.remember(user_message)
        store.append_message("assistant", reply)
        store.mark_delivered(request_id, seq)
    return seq, True
