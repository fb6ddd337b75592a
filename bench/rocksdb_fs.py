"""RocksDB on the tenant-data file system: ``python -m bench.rocksdb_fs [--dir PATH] [--writes 2000]``.

Run it on the volume the tier pods mount (an EFS/NFS mount in the cluster, a local directory here) to see what the
store's two durability levels cost there and how RocksDB's lock behaves across processes:

- a message write as the tier node does it (WAL, no fsync: survives a killed process, not a lost node) against the
  same write with ``sync=True`` (fsync per write: survives a lost node), and the close (flush + WAL sync) that every
  eviction pays;
- a second process opening a store another process holds (RocksDB's LOCK file, an fcntl lock), and opening it again
  once the holder is SIGKILLed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from rocksdict import Rdict, WriteOptions

from tiernode.store import TenantStore, _options, tenant_path

HOLD = "import sys,time; from rocksdict import Rdict; from tiernode.store import _options; d=Rdict(sys.argv[1], _options()); print('held', flush=True); time.sleep(600)"  # noqa: E501


def timed_writes(path: Path, writes: int, *, sync: bool) -> list[float]:
    db = Rdict(str(path), _options())
    opts = WriteOptions()
    opts.sync = sync
    payload = b"x" * 600  # about one chat message
    out = []
    for i in range(writes):
        t0 = time.perf_counter()
        db.put(b"m:%020d" % i, payload, opts)
        out.append(time.perf_counter() - t0)
    db.close()
    return out


def close_seconds(root: Path, messages: int) -> float:
    store = TenantStore(root, uuid.uuid4())
    for i in range(messages):
        store.append_message("user", f"message {i} " + "y" * 500)
    t0 = time.perf_counter()
    store.close()
    return time.perf_counter() - t0


def lock_behaviour(root: Path) -> dict[str, str]:
    path = tenant_path(root, uuid.uuid4())
    Rdict(str(path), _options()).close()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    try:
        Rdict(str(path), _options()).close()
        while_held = "opened (no lock: two writers possible)"
    except Exception as exc:  # rocksdict raises a plain Exception with RocksDB's message
        while_held = f"refused: {str(exc)[:80]}"
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    t0 = time.perf_counter()
    try:
        Rdict(str(path), _options()).close()
        after_kill = f"opened after {1000 * (time.perf_counter() - t0):.1f} ms"
    except Exception as exc:
        after_kill = f"refused: {str(exc)[:80]}"
    return {"second_process_while_held": while_held, "after_holder_sigkill": after_kill}


def ms(values: list[float], q: float) -> float:
    return round(1000 * statistics.quantiles(values, n=100)[int(q) - 1], 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", help="a directory on the file system to test (default: a temporary one)")
    parser.add_argument("--writes", type=int, default=2000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="rocksdb-fs-", dir=args.dir))
    fs = subprocess.run(["df", "-T", str(root)], capture_output=True, text=True).stdout.splitlines()[-1].split()[1]
    plain = timed_writes(root / "plain", args.writes, sync=False)
    synced = timed_writes(root / "synced", args.writes, sync=True)
    closes = [close_seconds(root, 200) for _ in range(5)]
    result = {
        "dir": str(root),
        "filesystem": fs,
        "write_ms_p50_p99": [ms(plain, 50), ms(plain, 99)],
        "write_sync_ms_p50_p99": [ms(synced, 50), ms(synced, 99)],
        "close_after_200_messages_ms_median": round(1000 * statistics.median(closes), 2),
        **lock_behaviour(root),
        "loadavg_1m": os.getloadavg()[0],
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
