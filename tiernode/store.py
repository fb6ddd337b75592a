"""One tenant's memory in its own RocksDB (rocksdict, raw bytes mode) at ``{data_root}/{tenant_id}/``.

Keys:
  ``m:{seq:020d}``  a message ``{"seq", "role", "content", "ts"}`` (zero-padded, so the newest are a reverse scan)
  ``f:{name}``      a key fact ``{"value", "ts"}``
  ``p:{name}``      a preference ``{"value", "ts"}``
  ``meta:tenant``   the tenant id the directory belongs to (checked on open)
  ``d:{request_id}`` a delivery already stored (``{"seq"}``): a repeated delivery is a no-op

All methods are blocking; the manager runs open/close/snapshot in a thread.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from rocksdict import Options, Rdict, WriteBatch, WriteOptions

MSG = b"m:"
FACT = b"f:"
PREF = b"p:"
META_TENANT = b"meta:tenant"
DELIVERED = b"d:"  # d:{request_id} -> the seq of the delivered user message (idempotent delivery)


class StoreError(Exception):
    pass


MEMORY_PROPERTIES = (
    "rocksdb.cur-size-all-mem-tables",
    "rocksdb.estimate-table-readers-mem",
    "rocksdb.block-cache-usage",
)


def tenant_path(data_root: Path, tenant_id: uuid.UUID) -> Path:
    return data_root / str(tenant_id)


def _options() -> Options:
    opt = Options(raw_mode=True)
    opt.create_if_missing(True)
    opt.set_max_open_files(64)  # many tenants per pod: keep file descriptors bounded
    opt.set_write_buffer_size(8 << 20)
    opt.set_max_write_buffer_number(2)
    opt.set_keep_log_file_num(2)
    return opt


def _msg_key(seq: int) -> bytes:
    return MSG + b"%020d" % seq


class TenantStore:
    """An open tenant RocksDB. Writes go through the WAL, so a killed process loses nothing it acknowledged."""

    def __init__(self, data_root: Path, tenant_id: uuid.UUID) -> None:
        self.tenant_id = tenant_id
        self.path = tenant_path(data_root, tenant_id)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._batch: WriteBatch | None = None
        self._db: Rdict | None = Rdict(str(self.path), _options())
        self._write_opts = WriteOptions()
        owner = cast(bytes | None, self._db.get(META_TENANT))
        if owner is None:
            self._db.put(META_TENANT, str(tenant_id).encode())
        elif owner.decode() != str(tenant_id):
            self._db.close()
            raise StoreError(f"{self.path} belongs to tenant {owner.decode()}, not {tenant_id}")
        self._seq = self._last_seq()
        self.facts: dict[str, str] = self._load_prefix(FACT)
        self.preferences: dict[str, str] = self._load_prefix(PREF)

    @property
    def db(self) -> Rdict:
        if self._db is None:
            raise StoreError(f"store for {self.tenant_id} is closed")
        return self._db

    @property
    def closed(self) -> bool:
        return self._db is None

    @property
    def memory_bytes(self) -> int:
        """RocksDB's own memory for this tenant: memtables, table readers and its block cache (0 when closed)."""
        if self._db is None:
            return 0
        return sum(int(self._db.property_int_value(name) or 0) for name in MEMORY_PROPERTIES)

    @property
    def message_count(self) -> int:
        return self._seq

    def _scan(self, from_key: bytes, *, backwards: bool = False) -> Iterator[tuple[bytes, bytes]]:
        """Raw-mode items from ``from_key`` (rocksdict's stubs do not know raw mode gives bytes)."""
        return cast(Iterator[tuple[bytes, bytes]], iter(self.db.items(backwards=backwards, from_key=from_key)))

    def _last_seq(self) -> int:
        for key, _ in self._scan(MSG + b"\xff", backwards=True):
            if key.startswith(MSG):
                return int(key[len(MSG) :])
            break
        return 0

    def _load_prefix(self, prefix: bytes) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, value in self._scan(prefix):
            if not key.startswith(prefix):
                break
            out[key[len(prefix) :].decode()] = json.loads(value)["value"]
        return out

    def _put(self, key: bytes, value: bytes) -> None:
        if self._batch is not None:
            self._batch.put(key, value)
        else:
            self.db.put(key, value, self._write_opts)

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Writes inside the block land together in one RocksDB write batch, or not at all."""
        self._batch, seq = WriteBatch(raw_mode=True), self._seq
        try:
            yield
            self.db.write(self._batch, self._write_opts)
        except BaseException:
            self._seq = seq
            raise
        finally:
            self._batch = None

    def append_message(self, role: str, content: str) -> int:
        self._seq += 1
        seq = self._seq
        record = {"seq": seq, "role": role, "content": content, "ts": time.time()}
        self._put(_msg_key(seq), json.dumps(record, separators=(",", ":")).encode())
        return seq

    def recent_messages(self, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` messages, oldest first."""
        out: list[dict[str, Any]] = []
        for key, value in self._scan(MSG + b"\xff", backwards=True):
            if not key.startswith(MSG) or len(out) >= limit:
                break
            out.append(json.loads(value))
        out.reverse()
        return out

    def delivered_seq(self, request_id: str) -> int | None:
        """The seq of the user message stored for ``request_id`` by an earlier delivery, if any."""
        raw = cast(bytes | None, self.db.get(DELIVERED + request_id.encode()))
        return None if raw is None else int(json.loads(raw)["seq"])

    def mark_delivered(self, request_id: str, seq: int) -> None:
        self._put(DELIVERED + request_id.encode(), json.dumps({"seq": seq}).encode())

    def set_fact(self, name: str, value: str) -> None:
        self._put_named(FACT, name, value)
        self.facts[name] = value

    def set_preference(self, name: str, value: str) -> None:
        self._put_named(PREF, name, value)
        self.preferences[name] = value

    def _put_named(self, prefix: bytes, name: str, value: str) -> None:
        record = json.dumps({"value": value, "ts": time.time()}, separators=(",", ":")).encode()
        self._put(prefix + name.encode(), record)

    def remember(self, text: str) -> None:
        """Deterministic memory extraction from a user message: facts and preferences."""
        for sentence in re.split(r"(?<=[.!?])\s+|\n+", text):
            sentence = sentence.strip().rstrip(".!?").strip()
            if not sentence:
                continue
            if m := re.match(r"(?i)^remember(?: that)?\s+(.{1,300})$", sentence):
                note = m.group(1).strip()
                self.set_fact(f"note:{_slug(note)}", note)
            elif m := re.match(r"(?i)^my ([a-z][a-z ]{0,40}?) (?:is|are) (.{1,200})$", sentence):
                self.set_fact(m.group(1).strip().lower(), m.group(2).strip())
            elif m := re.match(r"(?i)^i (prefer|like|love|dislike|hate) (.{1,200})$", sentence):
                self.set_preference(m.group(2).strip().lower(), m.group(1).lower())

    def context_snapshot(self, recent: int) -> dict[str, Any]:
        return {
            "tenant_id": str(self.tenant_id),
            "message_count": self._seq,
            "messages": self.recent_messages(recent),
            "facts": dict(self.facts),
            "preferences": dict(self.preferences),
        }

    def flush(self) -> None:
        self.db.flush(True)
        self.db.flush_wal(True)

    def close(self) -> None:
        """Flush memtables and the WAL, then close. Idempotent."""
        if self._db is None:
            return
        db, self._db = self._db, None
        try:
            db.flush(True)
            db.flush_wal(True)
        finally:
            db.close()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48] or "note"
