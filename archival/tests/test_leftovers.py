"""Nothing is left behind by a failed write or a dead worker: an aborted seal writes no last chunk and no object
reaches its final key; a `.part` file of a killed upload is replaced by the re-run; scratch folders of finished or
abandoned jobs are swept."""

from __future__ import annotations

import io
import os
import signal
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from archival import objectstore, pipeline, rocks, tarball
from archival.jobs import SCRATCH_DIR
from archival.models import ArchivalJob, JobStatus, JobType
from archival.scratch import sweep_scratch
from core import sealed

TENANT = uuid.uuid4()
KEY = bytes(range(32))


def test_a_writer_left_by_an_exception_writes_no_last_chunk() -> None:
    out = io.BytesIO()
    with (
        pytest.raises(RuntimeError),
        sealed.SealWriter(
            dst=out, tenant_id=TENANT, kind=sealed.KIND_ARCHIVE, key_id="k", key=KEY, chunk_size=4096
        ) as writer,
    ):
        writer.write(os.urandom(64 << 10))
        raise RuntimeError("the tar failed midway")
    with pytest.raises(sealed.SealedError, match="truncated"):
        sealed.open_bytes(blob=out.getvalue(), tenant_id=TENANT, kind=sealed.KIND_ARCHIVE, key_for=lambda _k: KEY)


def test_a_tar_failing_midway_leaves_no_object(object_store, tmp_path: Path) -> None:
    source = tmp_path / "db"
    rocks.build(source, {b"k%d" % i: os.urandom(1024) for i in range(4000)})
    (source / "big.sst").write_bytes(os.urandom(10 << 20))
    os.mkfifo(source / "zz-fifo")  # walked last: the tar fails after megabytes went out
    key = objectstore.archive_key(TENANT, uuid.uuid4())
    with pytest.raises(tarball.TarError, match="not a regular file"):
        pipeline.pack(source, lambda src: objectstore.upload(key, src), tenant_id=TENANT, key_id="k", key=KEY)
    assert not objectstore.exists(key)
    assert objectstore.list_keys(f"tenants/{TENANT}/") == []
    if object_store == "fs":
        assert not list(Path(objectstore.get_storage().path("tenants")).rglob("*.part"))


def test_a_killed_upload_leaves_a_part_that_the_rerun_replaces(fs_store: Path) -> None:
    key = objectstore.archive_key(TENANT, uuid.uuid4())
    final = Path(objectstore.get_storage().path(key))

    class DiesMidway(io.RawIOBase):
        sent = 0

        def read(self, n: int = -1) -> bytes:
            if self.sent >= 3 << 20:
                os.kill(os.getpid(), signal.SIGKILL)  # a worker killed mid-upload: no handler runs
            self.sent += 1 << 20
            return b"x" * (1 << 20)

    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child dies
        objectstore.upload(key, DiesMidway())
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    part = objectstore.part_path(final)
    assert part.stat().st_size >= 3 << 20 and not final.exists()
    assert objectstore.list_keys("tenants/") == []

    objectstore.upload(key, io.BytesIO(b"the re-run"))
    assert final.read_bytes() == b"the re-run"
    assert not part.exists()
    assert [p.name for p in final.parent.iterdir()] == [final.name]


def test_sweep_removes_scratch_of_finished_and_abandoned_jobs(db, data_root, make_tenant) -> None:
    base = data_root / SCRATCH_DIR
    tenants = [make_tenant() for _ in range(3)]
    done = ArchivalJob.objects.create(tenant=tenants[0], job_type=JobType.RESTORE, status=JobStatus.COMPLETED)
    failed = ArchivalJob.objects.create(tenant=tenants[1], job_type=JobType.RESTORE, status=JobStatus.FAILED)
    running = ArchivalJob.objects.create(tenant=tenants[2], job_type=JobType.RESTORE, status=JobStatus.RUNNING)
    old = {name: base / name for name in (str(done.id), str(failed.id), str(running.id), str(uuid.uuid4()))}
    old["drill"] = base / "drill-abc"
    old["other"] = base / "not-ours"
    for path in old.values():
        (path / "db").mkdir(parents=True)
        (path / "db" / "000001.sst").write_bytes(b"decrypted tenant data")
        os.utime(path, (0, 0))
    fresh = base / str(uuid.uuid4())  # a job that just (re)started: not swept even if its row says failed
    (fresh / "db").mkdir(parents=True)

    removed = sweep_scratch(older_than=timedelta(hours=1))

    assert sorted(removed) == sorted([old[str(done.id)], old[str(failed.id)], old[list(old)[3]], old["drill"]])
    assert old[str(running.id)].exists() and old["other"].exists() and fresh.exists()
    assert sweep_scratch() == []
