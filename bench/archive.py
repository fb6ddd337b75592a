"""Archive/restore benchmark: the project's pipeline against `tar | zstd -3` on the same RocksDB, same disk.

    python -m bench.archive [--size-mb N] [--dir DIR]

Project archive = checkpoint -> digest -> tar -> zstd -> seal -> object (temp file, fsync, rename) -> read-back
verification (size + SHA-256), exactly the steps of archival.services minus the database bookkeeping. Project restore
= read object -> open -> safe untar -> RocksDB digest check. Each side runs in a child process so its peak RSS is its
own. The last line is one JSON object: archive_ratio, restore_ratio (project / CLI throughput), peak_rss_mb.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
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
    rocks.checkpoint(src, ckpt)

    def consume(inp):  # type: ignore[no-untyped-def]
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
    return {"entry_count": packed.digest.entry_count, "digest": packed.digest.digest, "sha256": packed.stats.sha256}


def project_restore(obj: Path, dst: Path, expected: dict) -> None:
    from archival import pipeline

    dst.mkdir()
    got = pipeline.unpack(lambda: open(obj, "rb"), dst, tenant_id=TENANT, key_for=lambda _k: KEY)  # noqa: SIM115
    assert got.opened.sha256 == expected["sha256"]
    assert (got.digest.entry_count, got.digest.digest) == (expected["entry_count"], expected["digest"])


def _child(argv: list[str]) -> tuple[float, float, str]:
    """Run argv; (seconds, peak RSS MB of that child alone, stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run(argv, check=True, capture_output=True, text=True)
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return took, max(after, before) / 1024, proc.stdout


def _drop_caches_best_effort() -> None:
    subprocess.run(["sync"], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=512)
    parser.add_argument("--dir", default=None, help="working directory (default: a temp dir under var/)")
    parser.add_argument("--_child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args._child:
        mode, *rest = args._child
        if mode == "archive":
            print(json.dumps(project_archive(Path(rest[0]), Path(rest[1]), Path(rest[2]))))
        else:
            project_restore(Path(rest[0]), Path(rest[1]), json.loads(rest[2]))
        return

    if not shutil.which("zstd"):
        sys.exit("zstd CLI not found: apt-get install -y zstd")
    base = Path(args.dir or tempfile.mkdtemp(prefix="bench-archive-", dir=Path("var").resolve()))
    base.mkdir(parents=True, exist_ok=True)
    src, objects = base / "tenant", base / "objects"
    objects.mkdir(exist_ok=True)
    try:
        t = time.perf_counter()
        build_db(src, args.size_mb)
        size = dir_size(src)
        print(f"built RocksDB: {size / 2**20:.0f} MB on disk in {time.perf_counter() - t:.1f}s at {src}")
        me = [sys.executable, "-m", "bench.archive"]

        _drop_caches_best_effort()
        cli_obj = objects / "cli.tar.zst"
        cli_a, cli_rss_a, _ = _child(
            ["sh", "-c", f"tar -cf - -C {src} . | zstd -3 -q > {cli_obj} && sync -f {cli_obj}"]
        )
        cli_dst = base / "cli-restore"
        cli_dst.mkdir()
        cli_r, cli_rss_r, _ = _child(["sh", "-c", f"zstd -d -q -c {cli_obj} | tar -xf - -C {cli_dst}"])

        _drop_caches_best_effort()
        obj = objects / "project.sealed"
        scratch = base / "scratch"
        scratch.mkdir()
        prj_a, rss_a, out = _child([*me, "--_child", "archive", str(src), str(obj), str(scratch)])
        expected = out.strip().splitlines()[-1]
        prj_r, rss_r, _ = _child([*me, "--_child", "restore", str(obj), str(base / "project-restore"), expected])

        mb = size / 2**20
        rows = [
            ("archive", cli_a, prj_a, cli_obj.stat().st_size, obj.stat().st_size),
            ("restore", cli_r, prj_r, None, None),
        ]
        print(f"{'':8} {'tar|zstd -3':>14} {'project':>14} {'ratio':>7}")
        for name, c, p, cs, ps in rows:
            extra = f"   sizes: cli {cs / 2**20:.0f} MB, project {ps / 2**20:.0f} MB" if cs else ""
            print(f"{name:8} {mb / c:>9.0f} MB/s {mb / p:>9.0f} MB/s {c / p:>7.2f}{extra}")
        print(
            f"peak RSS: project archive {rss_a:.0f} MB, restore {rss_r:.0f} MB; cli {max(cli_rss_a, cli_rss_r):.0f} MB"
        )
        print(
            json.dumps(
                {
                    "size_mb": round(mb),
                    "archive_ratio": round(cli_a / prj_a, 3),
                    "restore_ratio": round(cli_r / prj_r, 3),
                    "peak_rss_mb": round(max(rss_a, rss_r), 1),
                    "seconds": {
                        "cli_archive": round(cli_a, 2),
                        "project_archive": round(prj_a, 2),
                        "cli_restore": round(cli_r, 2),
                        "project_restore": round(prj_r, 2),
                    },
                }
            )
        )
    finally:
        if not args.dir:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
