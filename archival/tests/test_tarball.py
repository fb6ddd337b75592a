"""Tar out and safely back in: hostile entries are refused and nothing escapes the target."""

import io
import os
import tarfile
from pathlib import Path

import pytest

from archival import tarball, untar
from archival.tarball import TarError


def _tar(*members: tuple[tarfile.TarInfo, bytes | None]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    buf.seek(0)
    return buf


def _info(name: str, kind: bytes = tarfile.REGTYPE, **attrs: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    for key, value in attrs.items():
        setattr(info, key, value)
    return info


def test_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.sst").write_bytes(os.urandom(3 << 20))
    (src / "sub" / "CURRENT").write_bytes(b"MANIFEST-1\n")
    (src / "empty").write_bytes(b"")
    buf = io.BytesIO()
    assert tarball.write_tar(src, buf) == 4
    buf.seek(0)
    dst = tmp_path / "dst"
    dst.mkdir()
    assert untar.safe_extract(buf, dst) == 3
    for rel in ("a.sst", "sub/CURRENT", "empty"):
        assert (dst / rel).read_bytes() == (src / rel).read_bytes()


def test_source_with_symlink_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "link").symlink_to("/etc/passwd")
    with pytest.raises(TarError, match="not a regular file"):
        tarball.write_tar(src, io.BytesIO())


@pytest.mark.parametrize(
    ("member", "message"),
    [
        ((_info("/etc/evil"), b"x"), "absolute path"),
        ((_info("../evil"), b"x"), r"escapes the target \('..'\)"),
        ((_info("a/../../evil"), b"x"), r"escapes the target"),
        ((_info("link", tarfile.SYMTYPE, linkname="/etc/passwd"), None), "symlinks are not allowed"),
        ((_info("link", tarfile.SYMTYPE, linkname="CURRENT"), None), "symlinks are not allowed"),
        ((_info("hard", tarfile.LNKTYPE, linkname="/etc/passwd"), None), "hard links are not allowed"),
        ((_info("dev", tarfile.CHRTYPE, devmajor=1, devminor=3), None), "devices are not allowed"),
        ((_info("blk", tarfile.BLKTYPE, devmajor=8, devminor=0), None), "devices are not allowed"),
        ((_info("fifo", tarfile.FIFOTYPE), None), "fifos are not allowed"),
    ],
)
def test_hostile_entries_refused(tmp_path: Path, member, message: str) -> None:
    dst = tmp_path / "dst"
    dst.mkdir()
    with pytest.raises(TarError, match=message):
        untar.safe_extract(_tar((_info("ok"), b"fine"), member), dst)
    assert not (tmp_path / "evil").exists()
    assert not (dst / "link").is_symlink()


def test_symlinked_directory_then_file_through_it_refused(tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    dst.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    archive = _tar((_info("d", tarfile.SYMTYPE, linkname=str(outside)), None), (_info("d/evil"), b"x"))
    with pytest.raises(TarError):
        untar.safe_extract(archive, dst)
    assert not (outside / "evil").exists()


def test_duplicate_entry_refused(tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    dst.mkdir()
    with pytest.raises(TarError, match="appears twice"):
        untar.safe_extract(_tar((_info("f"), b"1"), (_info("f"), b"2")), dst)


def test_non_empty_target_refused(tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "existing").write_bytes(b"keep")
    with pytest.raises(TarError, match="not empty"):
        untar.safe_extract(_tar((_info("f"), b"1")), dst)
    assert (dst / "existing").read_bytes() == b"keep"


def test_not_a_tar_refused(tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    dst.mkdir()
    with pytest.raises(TarError):
        untar.safe_extract(io.BytesIO(os.urandom(4096)), dst)


def test_piped_propagates_the_real_error() -> None:
    def producer(out):
        out.write(b"x" * (4 << 20))

    def consumer(src):
        src.read(10)
        raise ValueError("consumer broke")

    with pytest.raises(ValueError, match="consumer broke"):
        tarball.piped(producer, consumer)

    def bad_producer(out):
        out.write(b"partial")
        raise RuntimeError("producer broke")

    with pytest.raises(RuntimeError, match="producer broke"):
        tarball.piped(bad_producer, lambda src: src.read())
    assert tarball.piped(lambda out: out.write(b"abc") and "p", lambda src: src.read()) == ("p", b"abc")
