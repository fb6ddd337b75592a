"""The cold path's answers, as pure functions: the instant answer built from a context blob, and its SSE framing.

The answer is deterministic (same blob and message, same answer), built only from what the blob holds: recent
messages, key facts and preferences. Every chunk carries ``"percolate": {"cold_start": kind}`` (an extra key, which
OpenAI's SDKs keep and ignore) so a client can tell a cached answer from the pod's own.

What the gateway adds to a stream is invisible to OpenAI-compatible clients: notices ("warming", "delivered") are SSE
comment lines, which every SSE parser skips, and a failure is a `data:` line with OpenAI's `{"error": ...}` shape,
which the official SDKs raise as an `APIError`. No named event is ever sent.
"""

import hashlib
import json
import time
from json.encoder import encode_basestring  # what json.dumps(str, ensure_ascii=False) uses
from typing import Any

WARMING = "warming"
DONE = b"data: [DONE]\n\n"
MODEL = "percolate-context-cache"


def last_user_message(payload: Any) -> str | None:
    """The last user message of an OpenAI chat request body (text parts joined), or None if there is none."""
    messages = payload.get("messages") if isinstance(payload, dict) else None
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "".join(
                    p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
                )
            return ""
    return None


def wants_stream(payload: Any) -> bool:
    return isinstance(payload, dict) and payload.get("stream") is True


def _clip(text: str, limit: int = 120) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def compose(blob: dict[str, Any], user_message: str) -> str:
    """An answer from the tenant's own context while its workspace warms up."""
    facts = blob.get("facts") or {}
    prefs = blob.get("preferences") or {}
    messages = [m for m in blob.get("messages") or [] if isinstance(m, dict)]
    parts = ["Your workspace is waking up; here is what I have from our recent context."]
    if facts:
        listed = "; ".join(str(v) if str(k).startswith("note:") else f"{k}: {v}" for k, v in sorted(facts.items())[:10])
        parts.append(f"I remember: {listed}.")
    if prefs:
        listed = ", ".join(f"you {verb} {item}" for item, verb in sorted(prefs.items())[:10])
        parts.append(f"Preferences: {listed}.")
    said = [m for m in messages if m.get("role") == "user"]
    if said:
        parts.append(f'Last time you said: "{_clip(said[-1].get("content", ""))}".')
    answered = [m for m in messages if m.get("role") == "assistant"]
    if answered:
        parts.append(f'My last answer was: "{_clip(answered[-1].get("content", ""))}".')
    parts.append(f'You said: "{_clip(user_message)}". A full answer follows once your workspace is ready.')
    return " ".join(parts)


def _tokens(text: str) -> list[str]:
    words = text.split(" ")
    return [words[0]] + [" " + w for w in words[1:]]


def completion_id(request_id: str) -> str:
    return "chatcmpl-cold-" + hashlib.sha256(request_id.encode()).hexdigest()[:20]


def status_comment(status: str, **extra: Any) -> bytes:
    """A notice for the humans and tools that read the raw stream: an SSE comment, skipped by every SSE client."""
    return f": percolate.status {json.dumps({'status': status, **extra}, separators=(',', ':'))}\n\n".encode()


def error_event(code: str, message: str) -> bytes:
    """A failure mid-stream, in OpenAI's shape (the SDKs raise it as APIError with this message)."""
    doc = {"error": {"code": code, "message": message, "type": "percolate_error"}}
    return f"data: {json.dumps(doc, separators=(',', ':'))}\n\n".encode()


def wants_usage(payload: Any) -> bool:
    """`stream_options: {"include_usage": true}`: a last chunk with the usage, as OpenAI's API sends it."""
    options = payload.get("stream_options") if isinstance(payload, dict) else None
    return isinstance(options, dict) and options.get("include_usage") is True


def usage(user_message: str, answer: str) -> dict[str, int]:
    prompt, completion_tokens = len(user_message.split()), len(_tokens(answer))
    return {"prompt_tokens": prompt, "completion_tokens": completion_tokens, "total_tokens": prompt + completion_tokens}


_SLOT = "\x00delta\x00"  # stands for the delta while the frame around it is serialised once


def _frame(cid: str, created: int, kind: str, finish: str | None, with_usage: bool) -> tuple[str, str]:
    """The text of a chunk event before and after its delta: the same bytes json.dumps gives for the whole doc."""
    doc: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": MODEL,
        "choices": [{"index": 0, "delta": _SLOT, "finish_reason": finish}],
        "percolate": {"cold_start": kind},
    }
    if with_usage:
        doc["usage"] = None  # as OpenAI's API: null on every chunk but the last when usage was asked for
    head, _, tail = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).partition(json.dumps(_SLOT))
    return "data: " + head, tail + "\n\n"


def chunks(
    answer: str,
    *,
    request_id: str,
    kind: str,
    created: int | None = None,
    usage_of: str | None = None,
) -> list[bytes]:
    """The answer as OpenAI chat.completion.chunk events (role, one per word, finish), each marked; with
    `usage_of` (the user's message), a last chunk with no choices and the usage, as `include_usage` asks.

    The frame around the delta is serialised once, not once per word: the events are ready in microseconds, so the
    first words go out without waiting on the JSON encoder."""
    cid, created = completion_id(request_id), created or int(time.time())
    with_usage = usage_of is not None
    head, tail = _frame(cid, created, kind, None, with_usage)
    out = [f'{head}{{"role":"assistant","content":""}}{tail}'.encode()]
    out += [f'{head}{{"content":{encode_basestring(tok)}}}{tail}'.encode() for tok in _tokens(answer)]
    stop_head, stop_tail = _frame(cid, created, kind, "stop", with_usage)
    out.append(f"{stop_head}{{}}{stop_tail}".encode())
    if usage_of is not None:
        last = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": MODEL,
            "choices": [],
            "usage": usage(usage_of, answer),
            "percolate": {"cold_start": kind},
        }
        out.append(f"data: {json.dumps(last, separators=(',', ':'))}\n\n".encode())
    return out


def completion(answer: str, *, request_id: str, kind: str, user_message: str = "") -> bytes:
    """The non-streaming form of the instant answer."""
    doc = {
        "id": completion_id(request_id),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
        "usage": usage(user_message, answer),
        "percolate": {"cold_start": kind},
    }
    return json.dumps(doc, ensure_ascii=False).encode()
