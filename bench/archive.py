"""Archive/restore benchmark: the project's pipeline against the CLI on the same RocksDB, same disk.

    python -m bench.archive [--size-mb N] [--rounds N] [--dir DIR] [--verify]

References, durable like the project: `tar | zstd -3 > obj; sync -f obj` and `zstd -d | tar x; sync -f dir`.
Project archive = checkpoint -> digest -> tar -> zstd -> seal -> object (temp file, fsync, rename) -> read-back
verification (size + SHA-256), the steps of archival.archive minus the database bookkeeping. Project restore = what
archival.restore does by default: read object -> authenticate/decrypt -> zstd -> safe untar, files fsynced as they
land -> seal id against the manifest -> RocksDB opens (``--verify`` also times the full check: every key and value).
The rounds alternate which side goes first; each side runs in a child process whose peak RSS (the whole process
tree) is its own; the project's time is measured in the child from the start of the work (a worker has the
interpreter and the imports loaded already), the CLI's is the whole command. Figures are medians; the last line is
one JSON object with the ratios (project / CLI throughput), the per-round ratios and the load average. The working
directory defaults to var/ (created if missing).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

TENANT = uuid.UUID("00000000-0000-4000-8000-000000000b0b")
KEY = bytes(range(32))
WORDS = (
    "remember",
    "the",
    "meeting",
    "with",
    "alice",
    "about",
    "memory",
    "tenant",
    "project",
    "deadline",
    "note",
    "assistant",
    "user",
    "tomorrow",
    "coffee",
    "summary",
    "of",
    "a",
    "and",
    "is",
)


def build_db(path: Path, size_mb: int) -> None:
    from rocksdict import Options, Rdict, WriteBatch

    rnd = random.Random(42)
    opts = Options(raw_mode=True)
    opts.create_if_missing(True)
    db = Rdict(str(path), opts)
    target = size_mb << 20
    i = 0
    while True:
        batch = WriteBatch(raw_mode=True)
        for _ in range(2000):
            text = " ".join(rnd.choices(WORDS, k=rnd.randint(20, 300)))
            doc = {"id": i, "role": rnd.choice(("user", "assistant")), "ts": 1_700_000_000 + i, "text": text}
            value = json.dumps(doc).encode() + rnd.randbytes(rnd.randint(32, 512))
            batch.put(f"msg:{i:012d}".encode(), value)
            i += 1
        db.write(batch)
        if i % 20000 == 0:
            db.flush()
            if dir_size(path) >= target:
                break
    db.flush()
    db.close()


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def project_archive(src: Path, obj: Path, scratch: Path, threads: int | None = None) -> dict:
    from archival import pipeline, rocks

    ckpt = scratch / "ckpt"
    shutil.rmtree(ckpt, ignore_errors=True)
    rocks.checkpoint(src, ckpt)

    def consume(inp):
        tmp = obj.with_suffix(".part")
        with open(tmp, "wb") as out:
            while data := inp.read(1 << 20):
                out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, obj)

    packed = pipeline.pack(ckpt, consume, tenant_id=TENANT, key_id="bench", key=KEY, threads=threads)
    import hashlib

    h = hashlib.sha256()
    with open(obj, "rb") as handle:  # verification read-back, as the service does before deleting anything
        while data := handle.read(1 << 20):
            h.update(data)
    assert h.hexdigest() == packed.stats.sha256
    shutil.rmtree(ckpt)
    return {
        "entry_count": packed.digest.entry_count,
        "digest": packed.digest.digest,
        "sha256": packed.stats.sha256,
        "seal_id": packed.stats.seal_id,
        "bytes_out": packed.stats.bytes_out,
    }


def project_restore(obj: Path, dst: Path, expected: dict, verify: bool) -> None:
    from archival import pipeline

    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir()
    got = pipeline.unpack(
        lambda: open(obj, "rb"),  # noqa: SIM115
        dst,
        tenant_id=TENANT,
        key_for=lambda _k: KEY,
        full_check=verify,
        sha256=verify,
    )
    # archival.restore.check_identity / check_digest, without the Django setup they sit behind
    assert got.opened.bytes_in == expected["bytes_out"]
    assert got.opened.header.nonce_prefix.hex() == expected["seal_id"]
    if verify:
        assert got.opened.sha256 == expected["sha256"]
        assert got.digest is not None
        assert (got.digest.entry_count, got.digest.digest) == (expected["entry_count"], expected["digest"])


def _child(argv: list[str]) -> tuple[float, float, str]:
    """Run argv; (seconds, peak RSS MB of its whole process tree, stdout)."""
    from bench.procs import peak_rss_mb

    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    with peak_rss_mb(proc.pid, interval=0.05) as peak:
        out, _ = proc.communicate()
    took = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{argv[:4]} failed with exit code {proc.returncode}")
    return took, peak(), out


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=("archive", "restore"), help="time one direction (restore needs an archive)")
    parser.add_argument("--verify", action="store_true", help="also time the restore with the full digest check")
    parser.add_argument(
        "--dir", default=None, help="working directory, kept (and its tenant reused) afterwards (default: under var/)"
    )
    parser.add_argument("--_child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args._child:  # timed from here: a worker has the interpreter and the imports loaded already
        mode, *rest = args._child
        from archival import pipeline  # noqa: F401 - imported before the clock starts

        start = time.perf_counter()
        if mode == "archive":
            out = project_archive(Path(rest[0]), Path(rest[1]), Path(rest[2]))
        else:
            project_restore(Path(rest[0]), Path(rest[1]), json.loads(rest[2]), verify=mode == "restore-verify")
            out = {}
        print(json.dumps({**out, "seconds": time.perf_counter() - start}))
        return

    if not shutil.which("zstd"):
        sys.exit("zstd CLI not found: apt-get install -y zstd")
    if args.dir:
        base = Path(args.dir).resolve()
    else:
        var = Path(__file__).resolve().parent.parent / "var"
        var.mkdir(exist_ok=True)
        base = Path(tempfile.mkdtemp(prefix="bench-archive-", dir=var))
    base.mkdir(parents=True, exist_ok=True)
    src, objects = base / f"tenant-{args.size_mb}mb", base / "objects"
    objects.mkdir(exist_ok=True)
    try:
        t = time.perf_counter()
        if not (src / "CURRENT").is_file():
            build_db(src, args.size_mb)
        size = dir_size(src)
        print(f"RocksDB: {size / 2**20:.0f} MB on disk ({time.perf_counter() - t:.1f}s) at {src}")
        me = [sys.executable, "-m", "bench.archive"]
        cli_obj, obj = objects / "cli.tar.zst", objects / "project.sealed"
        cli_dst, prj_dst, scratch = base / "cli-restore", base / "project-restore", base / "scratch"
        scratch.mkdir(exist_ok=True)
        runs: dict[str, list[float]] = {k: [] for k in ("cli_a", "prj_a", "cli_r", "prj_r", "prj_v")}
        rss: dict[str, list[float]] = {"archive": [], "restore": []}
        loads = [_load()]
        expected = ""

        def cli_archive() -> None:
            subprocess.run(["sync"], check=False)
            took, _, _ = _child(["sh", "-c", f"tar -cf - -C {src} . | zstd -3 -q -f -o {cli_obj} && sync -f {cli_obj}"])
            runs["cli_a"].append(took)

        def prj_archive() -> None:
            nonlocal expected
            subprocess.run(["sync"], check=False)
            _, peak, out = _child([*me, "--_child", "archive", str(src), str(obj), str(scratch)])
            expected = out.strip().splitlines()[-1]
            runs["prj_a"].append(json.loads(expected)["seconds"])
            rss["archive"].append(peak)

        def cli_restore() -> None:
            shutil.rmtree(cli_dst, ignore_errors=True)
            cli_dst.mkdir()
            subprocess.run(["sync"], check=False)
            took, _, _ = _child(["sh", "-c", f"zstd -d -q -c {cli_obj} | tar -xf - -C {cli_dst} && sync -f {cli_dst}"])
            runs["cli_r"].append(took)

        def prj_restore(mode: str = "restore", key: str = "prj_r") -> None:
            subprocess.run(["sync"], check=False)
            _, peak, out = _child([*me, "--_child", mode, str(obj), str(prj_dst), expected])
            runs[key].append(json.loads(out.strip().splitlines()[-1])["seconds"])
            rss["restore"].append(peak)

        if args.only == "restore":  # one archive of each kind to restore from, not timed
            cli_archive()
            prj_archive()
            runs["cli_a"].clear()
            runs["prj_a"].clear()
        for n in range(args.rounds):
            if args.only != "restore":
                order = [cli_archive, prj_archive] if n % 2 == 0 else [prj_archive, cli_archive]
                for fn in order:
                    fn()
            if args.only != "archive":
                order = [cli_restore, prj_restore] if n % 2 == 0 else [prj_restore, cli_restore]
                for fn in order:
                    fn()
            if args.verify:
                prj_restore("restore-verify", "prj_v")
            loads.append(_load())
            timed = ", ".join(f"{k} {v[-1]:.2f}s" for k, v in runs.items() if v)
            print(f"round {n + 1}: {timed}; load {loads[-1]}")

        mb = size / 2**20
        med = {k: _median(v) for k, v in runs.items() if v}
        result: dict = {"size_mb": round(mb), "rounds": args.rounds}
        print(f"{'median':8} {'CLI':>14} {'project':>14} {'ratio':>7}")
        for name, c, p in (
            ("archive", "cli_a", "prj_a"),
            ("restore", "cli_r", "prj_r"),
            ("restore_verify", "cli_r", "prj_v"),
        ):
            if p not in med:
                continue
            print(f"{name:8} {mb / med[c]:>9.0f} MB/s {mb / med[p]:>9.0f} MB/s {med[c] / med[p]:>7.2f}")
            result[f"{name}_ratio"] = round(med[c] / med[p], 3)
            result[f"{name}_ratios"] = [round(x / y, 3) for x, y in zip(runs[c], runs[p], strict=True)]
        peaks = {k: round(max(v), 1) for k, v in rss.items() if v}
        print(f"peak RSS (process tree, MB) {peaks}; load average {loads}")
        result.update(
            peak_rss_mb=max(peaks.values()),
            peak_rss=peaks,
            seconds={k: round(v, 2) for k, v in med.items()},
            load_average=loads,
        )
        print(json.dumps(result))
    finally:
        if not args.dir:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
