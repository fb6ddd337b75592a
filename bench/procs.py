"""Process helpers for benchmarks: free ports, start/stop, readiness, and peak memory of a process tree."""

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(
    cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | str | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_http(port: int, path: str = "/", timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _tree_stats(root: int) -> list[tuple[int, list[str], str]]:
    """(pid, fields of /proc/pid/stat after the command, /proc/pid/status) of a process and all its descendants."""
    children: dict[int, list[int]] = {}
    seen: dict[int, tuple[list[str], str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            status = (entry / "status").read_text()
        except OSError:
            continue
        pid = int(entry.name)
        children.setdefault(int(stat[1]), []).append(pid)
        seen[pid] = (stat, status)
    found: list[tuple[int, list[str], str]] = []
    stack = [root]
    while stack:
        pid = stack.pop()
        if pid in seen:
            found.append((pid, *seen[pid]))
        stack.extend(children.get(pid, []))
    return found


def tree_rss_mb(root: int) -> float:
    """Resident memory of a process and all its descendants, in MB."""
    total = 0
    for _, _, status in _tree_stats(root):
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def tree_cpu_seconds(root: int) -> float:
    """CPU time (user + system) spent so far by a process and its living descendants.

    Per request, this is the figure a loaded machine disturbs least: throughput falls with the CPU that neighbours
    take, the CPU a request costs much less."""
    ticks = sum(int(stat[11]) + int(stat[12]) for _, stat, _ in _tree_stats(root))
    return ticks / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def peak_rss_mb(root: int, interval: float = 0.5) -> Iterator[Callable[[], float]]:
    """Poll the tree's memory in the background; yields a function that returns the peak seen."""
    peak = [0.0]
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss_mb(root))
            done.wait(interval)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield lambda: peak[0]
    finally:
        done.set()
        thread.join()
