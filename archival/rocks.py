"""A tenant's RocksDB: a consistent checkpoint to archive, and an entry count + digest to prove a restore.

The checkpoint is RocksDB's own (``Checkpoint.create_checkpoint``): a flushed, consistent copy made of hard links
on the same filesystem, so it costs no copy of the data. It is taken while the archiving task holds the tenant lease
(no pod may open the tenant), on a database opened with the options it was created with (``rocksdict-config.json``).

The digest covers every column family (sorted by name), and in each every key and value in key order::

    sha256( for each cf: "cf" | len(name) | name | sha256(keys and values concatenated) | sha256(their lengths, u64) )

with the total entry count recorded beside it. It is computed on a read-only open, so it can run on a scratch copy.
"""

from __future__ import annotations

import array
import hashlib
import itertools
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from rocksdict import AccessType, Checkpoint, Options, Rdict, ReadOptions

BATCH = 2048


class RocksError(Exception):
    pass


@dataclass(frozen=True)
class RocksDigest:
    entry_count: int
    digest: str


EMPTY = RocksDigest(0, hashlib.sha256(b"percolate-rocks-v1:empty").hexdigest())


def is_rocksdb(path: Path) -> bool:
    return (path / "CURRENT").is_file()


def checkpoint(src: Path, dst: Path) -> None:
    """A consistent copy of the RocksDB at ``src`` in ``dst`` (which must not exist), by RocksDB's checkpoint."""
    if dst.exists():
        raise RocksError(f"checkpoint target {dst} already exists")
    if not is_rocksdb(src):
        raise RocksError(f"{src} is not a RocksDB directory")
    try:
        db = Rdict(str(src))
        try:
            db.flush_wal(True)
            Checkpoint(db).create_checkpoint(str(dst))
        finally:
            db.close()
            del db
    except RocksError:
        raise
    except Exception as exc:
        raise RocksError(f"checkpoint of {src} failed: {exc}") from exc
    # Files RocksDB does not know about (the rocksdict config) travel with the copy.
    for name in ("rocksdict-config.json",):
        if (src / name).is_file() and not (dst / name).exists():
            shutil.copy2(src / name, dst / name)


def digest(path: Path) -> RocksDigest:
    """Entry count and digest of every key and value of the RocksDB at ``path`` (read-only)."""
    if not path.exists() or not any(path.iterdir()):
        return EMPTY
    if not is_rocksdb(path):
        raise RocksError(f"{path} is not a RocksDB directory (no CURRENT file)")
    try:
        cfs = sorted(Rdict.list_cf(str(path)))
        db = Rdict(str(path), access_type=AccessType.read_only())
    except Exception as exc:
        raise RocksError(f"cannot open RocksDB at {path}: {exc}") from exc
    top = hashlib.sha256(b"percolate-rocks-v1")
    total = 0
    try:
        for name in cfs:
            handle = db if name == "default" else db.get_column_family(name)
            count, data_hash, len_hash = _digest_cf(handle)
            total += count
            raw = name.encode()
            top.update(b"cf" + len(raw).to_bytes(4, "big") + raw + data_hash + len_hash + count.to_bytes(8, "big"))
            del handle
    except Exception as exc:
        raise RocksError(f"reading RocksDB at {path} failed: {exc}") from exc
    finally:
        db.close()
        del db
    return RocksDigest(total, top.hexdigest())


class DigestProcess:
    """:func:`digest` in a child process (``python -m archival.rocks PATH``): rocksdict's iteration holds the GIL for
    seconds, and in a process of its own it no longer stalls the archive's tar, sealing and upload threads."""

    def __init__(self, path: Path) -> None:
        self._proc = subprocess.Popen(  # noqa: S603 (our interpreter, our module, a path we made)
            [sys.executable, "-m", "archival.rocks", str(Path(path).resolve())],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=_PROJECT,  # `-m` finds archival from the working directory
        )

    def result(self) -> RocksDigest:
        out, err = self._proc.communicate()
        if self._proc.returncode:
            raise RocksError(err.decode(errors="replace").strip().splitlines()[-1] if err else "digest failed")
        got = json.loads(out)
        return RocksDigest(got["entry_count"], got["digest"])

    def cancel(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.communicate()


_PROJECT = str(Path(__file__).resolve().parent.parent)


def check_opens(path: Path) -> None:
    """RocksDB opens ``path`` read-only (its CURRENT, MANIFEST and every column family) and reads the first entry
    of each; an empty directory is an empty tenant. The cheap check of a restore whose bytes the seal proved."""
    if not path.exists() or not any(path.iterdir()):
        return
    if not is_rocksdb(path):
        raise RocksError(f"{path} is not a RocksDB directory (no CURRENT file)")
    try:
        cfs = sorted(Rdict.list_cf(str(path)))
        db = Rdict(str(path), access_type=AccessType.read_only())
    except Exception as exc:
        raise RocksError(f"cannot open RocksDB at {path}: {exc}") from exc
    try:
        for name in cfs:
            handle = db if name == "default" else db.get_column_family(name)
            it = handle.iter()
            it.seek_to_first()
            if it.valid():
                it.key()
            del it, handle
    except Exception as exc:
        raise RocksError(f"reading RocksDB at {path} failed: {exc}") from exc
    finally:
        db.close()
        del db


def _digest_cf(handle: Rdict) -> tuple[int, bytes, bytes]:
    """Iterate here (rocksdict holds the GIL) while a helper thread hashes the previous batch (hashlib releases it)."""
    read_opts = ReadOptions()
    read_opts.fill_cache(False)  # type: ignore[call-arg]  # the stub lacks the setter form
    # RocksDB's own readahead (growing with sequential reads): a fixed 8 MB cost 50 MB of RSS for no measured gain
    data_hash, len_hash = hashlib.sha256(), hashlib.sha256()
    batches: queue.Queue[tuple[bytes, bytes] | None] = queue.Queue(maxsize=2)
    failed: list[BaseException] = []

    def hash_batches() -> None:
        try:
            while (item := batches.get()) is not None:
                data_hash.update(item[0])
                len_hash.update(item[1])
        except BaseException as exc:  # pragma: no cover - hashing bytes does not fail
            failed.append(exc)
            while batches.get() is not None:
                pass

    hasher = threading.Thread(target=hash_batches, name="rocks-digest", daemon=True)
    hasher.start()
    count = 0
    try:
        items = iter(handle.items(read_opt=read_opts))
        while True:
            parts = list(itertools.chain.from_iterable(itertools.islice(items, BATCH)))
            if not parts:
                break
            count += len(parts) // 2
            try:
                joined = b"".join(parts)
            except TypeError:
                raise RocksError("RocksDB is not in raw mode: keys and values must be bytes") from None
            if not isinstance(parts[0], bytes):
                raise RocksError("RocksDB is not in raw mode: keys and values must be bytes")
            batches.put((joined, array.array("Q", map(len, parts)).tobytes()))
    finally:
        batches.put(None)
        hasher.join()
    if failed:
        raise failed[0]
    return count, data_hash.digest(), len_hash.digest()


def build(
    path: Path,
    entries: dict[bytes, bytes] | None = None,
    *,
    column_families: dict[str, dict] | None = None,
    compression: bool = True,
) -> None:
    """Create a raw-mode RocksDB at ``path`` holding ``entries`` (tests, benchmarks, dev seeding)."""
    opts = Options(raw_mode=True)
    opts.create_if_missing(True)
    if not compression:
        from rocksdict import DBCompressionType

        opts.set_compression_type(DBCompressionType.none())
    db = Rdict(str(path), opts)
    try:
        for key, value in (entries or {}).items():
            db[key] = value
        for name, items in (column_families or {}).items():
            cf = db.create_column_family(name, Options(raw_mode=True))
            for key, value in items.items():
                cf[key] = value
            del cf
        db.flush()
    finally:
        db.close()
        del db


def dir_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            total += os.lstat(os.path.join(root, name)).st_size
    return total


if __name__ == "__main__":  # DigestProcess's child: prints the digest of the RocksDB at argv[1] as JSON
    try:
        result = digest(Path(sys.argv[1]))
    except RocksError as exc:
        sys.exit(f"RocksError: {exc}")
    print(json.dumps({"entry_count": result.entry_count, "digest": result.digest}))
