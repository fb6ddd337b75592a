"""Restores that fail leave nothing behind: archives validly sealed but holding hostile or broken content, the OS
refusing an entry, a full disk, a download cut mid-stream. In every case the first real cause is what the job says,
the tenant ends archived (or, for a transient failure, restoring under its lease until the retry), and no decrypted
byte stays in scratch.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from archival import objectstore, rocks, services
from archival.models import ArchivalJob, JobStatus
from archival.selectors import tenant_data_dir
from archival.tests.conftest import S3_ENDPOINT, s3_storage_config
from archival.tests.test_services import ACTOR, archive, state_of
from archival.tests.test_tarball import _info as _member
from core import sealed
from tenants.keys import tenant_data_key
from tenants.models import State

BIG = 12 << 20  # more than the pipe, the prefetch and the sealed chunks in flight: the producer is mid-stream


def _tar(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info.size = len(data or b"")
            tar.addfile(info, io.BytesIO(data) if data else None)
    return buf.getvalue()


def plant(tenant, payload: bytes) -> ArchivalJob:
    """Make ``payload`` (a tar) the tenant's archive: sealed with its real key, so every chunk authenticates."""
    job = ArchivalJob.objects.get(tenant=tenant, job_type="archive", status=JobStatus.COMPLETED)
    m = job.manifest
    key_id, key = tenant_data_key(tenant_id=tenant.id, key_id=m["key_id"])
    out = io.BytesIO()
    stats = sealed.seal_stream(
        src=io.BytesIO(payload), dst=out, tenant_id=tenant.id, kind=sealed.KIND_ARCHIVE, key_id=key_id, key=key
    )
    objectstore.upload(m["object_key"], io.BytesIO(out.getvalue()))
    m.update(bytes_out=stats.bytes_out, sha256=stats.sha256, seal_id=stats.seal_id)
    job.save(update_fields=["manifest"])
    return job


@pytest.fixture
def archived(make_tenant, rocks_tenant, data_root):
    tenant = make_tenant()
    rocks_tenant(tenant, 10)
    archive(tenant)
    return tenant


def restore_fails(tenant, data_root: Path, match: str, *, state: str = State.ARCHIVED) -> ArchivalJob:
    job = services.restore_request(tenant_id=tenant.id, actor=ACTOR, enqueue=False)
    with pytest.raises(services.ArchivalError, match=match) as caught:
        services.restore_run(job_id=job.id)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "Broken pipe" not in job.error_message, job.error_message
    assert state_of(tenant).state == state
    assert not tenant_data_dir(tenant.id).exists()
    assert not (data_root / services.SCRATCH_DIR / str(job.id)).exists(), "scratch left behind"
    if state == State.ARCHIVED:
        assert not isinstance(caught.value, services.TransientArchivalError), "a refusal is never retried"
    return job


HOSTILE = {
    "symlink": (_member("db/link", tarfile.SYMTYPE, linkname="/etc"), None, "symlinks are not allowed"),
    "hard link": (_member("db/hard", tarfile.LNKTYPE, linkname="db/f"), None, "hard links are not allowed"),
    "absolute path": (_member("/tmp/evil"), b"x", "absolute path"),
    "dot-dot": (_member("db/../../evil"), b"x", r"escapes the target \('..'\)"),
    "device": (_member("db/dev", tarfile.CHRTYPE, devmajor=1, devminor=3), None, "devices are not allowed"),
    "fifo": (_member("db/fifo", tarfile.FIFOTYPE), None, "fifos are not allowed"),
    # Refused by the operating system, not by our checks: still a refusal naming the entry.
    "name over NAME_MAX": (_member("db/" + "n" * 300), b"x", "File name too long"),
    "path over PATH_MAX": (_member("/".join(["d" * 200] * 25) + "/f"), b"x", "File name too long"),
}


@pytest.mark.parametrize("offset", ["first", "after 12 MB"])
@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_entry_at_any_offset_is_a_permanent_refusal(db, fs_store, archived, data_root, kind, offset) -> None:
    info, data, match = HOSTILE[kind]
    bulk = (_member("db/bulk.sst"), os.urandom(BIG))
    members = [(info, data), bulk] if offset == "first" else [bulk, (info, data), (_member("db/more"), os.urandom(BIG))]
    plant(archived, _tar(*members))
    job = restore_fails(archived, data_root, f"refused entry .*{match}")
    assert "refused entry" in job.error_message


def test_a_path_through_a_file_extracted_earlier_is_refused(db, s3_store, archived, data_root) -> None:
    plant(archived, _tar((_member("db/a"), b"f"), (_member("db/big"), os.urandom(BIG)), (_member("db/a/b/c"), b"x")))
    restore_fails(archived, data_root, r"refused entry 'db/a/b/c': Not a directory")


def test_a_full_disk_says_so(db, fs_store, archived, data_root) -> None:
    plant(archived, _tar((_member("db/one.sst"), os.urandom(2 << 20)), (_member("db/two.sst"), os.urandom(BIG))))
    with _small_filesystem(data_root, "6m"):
        job = restore_fails(archived, data_root, "no space left on the tenant data volume")
    assert "No space left on device" in job.error_message


@contextlib.contextmanager
def _small_filesystem(path: Path, size: str) -> Iterator[None]:
    """A tmpfs of ``size`` mounted over ``path``: a real full disk. The suite runs as root (CI and the dev machines),
    and a full disk is a failure family of its own, so without root this fails rather than checking nothing."""
    assert os.geteuid() == 0, "the full-disk test mounts a tmpfs and needs root (run the suite as CI does)"
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


class CuttingProxy:
    """A TCP proxy to SeaweedFS that closes each connection after ``limit`` bytes of response: a download cut
    mid-stream, as a network or a store going away does it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        host, port = S3_ENDPOINT.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.upstream)

        def requests() -> None:
            with contextlib.suppress(OSError):
                while data := client.recv(65536):
                    upstream.sendall(data)

        threading.Thread(target=requests, daemon=True).start()
        sent = 0
        with contextlib.suppress(OSError):
            while sent < self.limit and (data := upstream.recv(65536)):
                client.sendall(data[: self.limit - sent])
                sent += len(data)
        for sock in (client, upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.server.close()


def test_a_download_cut_mid_stream_leaves_no_plaintext_and_the_retry_restores(
    db, s3_store, make_tenant, rocks_tenant, data_root, settings
) -> None:
    tenant = make_tenant()
    before = rocks_tenant(tenant, 6000, value_size=2000)
    archive(tenant)
    proxy = CuttingProxy(limit=2 << 20)
    settings.STORAGES = {**settings.STORAGES, "objects": s3_storage_config(s3_store, f"http://127.0.0.1:{proxy.port}")}
    try:
        job = restore_fails(tenant, data_root, "download .* failed", state=State.RESTORING)
    finally:
        proxy.close()
    assert "TransientArchivalError" in job.error_message
    settings.STORAGES = {**settings.STORAGES, "objects": s3_storage_config(s3_store)}
    job = services.restore_run(job_id=job.id)  # the retry, as Celery's autoretry runs it
    assert job.status == JobStatus.COMPLETED, job.error_message
    assert rocks.digest(tenant_data_dir(tenant.id)) == before
    assert not (data_root / services.SCRATCH_DIR / str(job.id)).exists()
