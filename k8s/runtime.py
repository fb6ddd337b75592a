"""The rendered manifests as the cluster would run them: each container's environment, the HTTP calls other parts
make to it (probes, Prometheus scrapes, URLs in other workloads' settings), and a local launch of a workload with the
command and environment its manifest gives it, so tests can make those calls against the real process.

Only what a local machine cannot have is changed: secret files move to a temporary directory (with values the test
supplies), data directories to temporary ones, the listening address to a free local port.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from k8s.manifests import REPO_ROOT, Obj, find, object_id, pod_labels, pod_spec, selector_matches

SECRETS_MOUNT = "/run/secrets/percolate"
POD_IP = "10.1.2.3"  # any pod address: what kubelet and Prometheus put in the Host header


def containers(obj: Obj) -> list[Obj]:
    return list((pod_spec(obj) or {}).get("containers") or [])


def workloads(objs: Iterable[Obj]) -> list[Obj]:
    return [o for o in objs if pod_spec(o) is not None]


def container_env(objs: list[Obj], container: Obj, *, secrets: dict[str, str] | None = None) -> dict[str, str]:
    """Name -> value of every variable the container gets: envFrom ConfigMaps, then env (values, $(VAR) expanded,
    the pod IP, secret keys from `secrets` or empty)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        if "configMapRef" in source:
            env.update(find(objs, "ConfigMap", source["configMapRef"]["name"]).get("data") or {})
        elif "secretRef" in source:
            env.update({k: "" for k in _sealed_keys(objs, source["secretRef"]["name"])})
    for var in container.get("env") or []:
        if "value" in var:
            env[var["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), str(var["value"]))
            continue
        ref = var.get("valueFrom") or {}
        if (ref.get("fieldRef") or {}).get("fieldPath") == "status.podIP":
            env[var["name"]] = POD_IP
        elif "secretKeyRef" in ref:
            env[var["name"]] = (secrets or {}).get(ref["secretKeyRef"]["key"], "")
        else:
            env[var["name"]] = ""
    return env


def _sealed_keys(objs: list[Obj], name: str) -> list[str]:
    return list(find(objs, "SealedSecret", name)["spec"]["encryptedData"])


def container_port(container: Obj, port: str | int) -> int | None:
    for p in container.get("ports") or []:
        if port in (p.get("name"), p.get("containerPort")):
            return int(p["containerPort"])
    return None


# --------------------------------------------------------------------------------------------------------------
# who calls a workload over HTTP


@dataclass(frozen=True)
class HttpCall:
    caller: (
        str  # "kubelet readinessProbe", "ServiceMonitor/percolate/web", "Deployment/percolate/tier-a (PLATFORM_URL)"
    )
    port: int  # the container port called
    path: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return self.headers.get("Host", f"{POD_IP}:{self.port}")


def probe_calls(container: Obj) -> list[HttpCall]:
    calls = []
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = (container.get(probe) or {}).get("httpGet")
        if get:
            port = container_port(container, get["port"]) or 0
            headers = {h["name"]: h["value"] for h in get.get("httpHeaders") or []}
            calls.append(HttpCall(f"kubelet {probe}", port, get.get("path", "/"), headers))
    return calls


def monitor_calls(objs: list[Obj], workload: Obj) -> list[HttpCall]:
    """The scrapes of every ServiceMonitor/PodMonitor that selects this workload's pods; Prometheus sends the
    target's address (pod IP and port) as Host."""
    labels, calls = pod_labels(workload), []
    for mon in objs:
        if mon.get("kind") == "PodMonitor" and selector_matches(mon["spec"].get("selector"), labels):
            for ep in mon["spec"].get("podMetricsEndpoints") or []:
                port = next((container_port(c, ep.get("port", "")) for c in containers(workload)), None)
                calls.append(HttpCall(object_id(mon), port or 0, ep.get("path", "/metrics")))
        if mon.get("kind") != "ServiceMonitor":
            continue
        for svc in objs:
            if svc.get("kind") != "Service" or not selector_matches(mon["spec"].get("selector"), _labels(svc)):
                continue
            if not svc["spec"].get("selector") or not selector_matches(
                {"matchLabels": svc["spec"]["selector"]}, labels
            ):
                continue
            for ep in mon["spec"].get("endpoints") or []:
                target = next((p.get("targetPort") for p in svc["spec"]["ports"] if p.get("name") == ep.get("port")), 0)
                port = next((container_port(c, target) for c in containers(workload)), None)
                calls.append(HttpCall(object_id(mon), port or 0, ep.get("path", "/metrics")))
    return calls


def _labels(obj: Obj) -> dict[str, str]:
    return obj.get("metadata", {}).get("labels") or {}


def service_url_callers(objs: list[Obj], workload: Obj) -> list[tuple[str, str, int]]:
    """(caller workload and variable, Host header, container port) for every http:// URL in another workload's
    environment that names a Service selecting this workload (`http://web.percolate.svc:8000`)."""
    labels, found = pod_labels(workload), []
    services = {s["metadata"]["name"]: s for s in objs if s.get("kind") == "Service" and s["spec"].get("selector")}
    for caller in workloads(objs):
        for c in containers(caller):
            for name, value in container_env(objs, c).items():
                if not str(value).startswith("http://"):
                    continue
                url = urlsplit(value)
                svc = services.get((url.hostname or "").split(".")[0])
                if not svc or not selector_matches({"matchLabels": svc["spec"]["selector"]}, labels):
                    continue
                svc_port = next(p for p in svc["spec"]["ports"] if p["port"] == (url.port or 80))
                port = next((container_port(w, svc_port["targetPort"]) for w in containers(workload)), None)
                found.append((f"{object_id(caller)} ({name})", url.netloc, port or 0))
    return found


# --------------------------------------------------------------------------------------------------------------
# running a workload locally


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# What an image runs when its container gives no args: the tier image is the reference tier node here (as in dev).
IMAGE_COMMANDS = {"percolate": ["python", "-m", "tiernode"], "percolate-tiernode": ["python", "-m", "tiernode"]}


def image_name(container: Obj) -> str:
    return str(container.get("image")).rsplit("/", 1)[-1].split("@")[0].split(":")[0]


def local_command(container: Obj, ports: dict[int, int]) -> list[str]:
    """The container's command with python tools run from this interpreter and each listening port mapped locally."""
    out = list(container.get("command") or []) + list(container.get("args") or [])
    out = out or list(IMAGE_COMMANDS[image_name(container)])
    if out and out[0] in ("gunicorn", "celery", "uvicorn"):
        out = [sys.executable, "-m", *out]
    elif out and out[0] == "python":
        out[0] = sys.executable
    for i, arg in enumerate(out):
        for listening, local in ports.items():
            if arg == f"0.0.0.0:{listening}":
                out[i] = f"127.0.0.1:{local}"
            elif arg == str(listening) and i and out[i - 1] == "--port":
                out[i] = str(local)
        if arg == "0.0.0.0" and i and out[i - 1] == "--host":  # noqa: S104 (replacing it)
            out[i] = "127.0.0.1"
    return out


def local_env(
    env: dict[str, str], tmp: Path, secrets: dict[str, str], ports: dict[int, int] | None = None
) -> dict[str, str]:
    """Secret files into tmp/secrets (values from `secrets`), container paths (/data, /tmp/...) into tmp, listening
    ports (`*PORT` variables naming a container port) onto the local ones, all interfaces onto 127.0.0.1."""
    secret_dir = tmp / "secrets"
    secret_dir.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, value in env.items():
        if name.endswith("PORT") and value.isdigit() and int(value) in (ports or {}):
            value = str((ports or {})[int(value)])
        elif name == "HOST" and value == "0.0.0.0":  # noqa: S104 (replacing it)
            value = "127.0.0.1"
        elif value.startswith(SECRETS_MOUNT + "/"):
            key = value.rsplit("/", 1)[1]
            (secret_dir / key).write_text(secrets.get(key, ""))
            value = str(secret_dir / key)
        elif value.startswith(("/data", "/tmp/")):  # noqa: S108 (the container's paths, moved under tmp)
            value = str(tmp / value.strip("/").replace("/", "-"))
        out[name] = value
    return out


@contextmanager
def run_local(command: list[str], env: dict[str, str], port: int, timeout: float = 60.0) -> Iterator[None]:
    """Start the command (cwd: the repository), wait until it accepts connections on port, stop it afterwards."""
    full_env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", str(Path.home())), **env}
    proc = subprocess.Popen(  # noqa: S603 (the manifest's own command, localized)
        command, cwd=REPO_ROOT, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace")[-2000:] if proc.stderr else ""
                raise RuntimeError(f"{command[:4]} exited with {proc.returncode}: {err}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{command[:4]} did not listen on {port} in {timeout} s") from None
                time.sleep(0.2)
        yield
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
        proc.kill()  # only if it is still running: Popen knows it has exited
        proc.wait()


def check_monitor_targets(objs: list[Obj]) -> list[str]:
    """Every ServiceMonitor/PodMonitor endpoint reaches a listening container port of at least one workload."""
    problems = []
    for mon in objs:
        if mon.get("kind") not in ("ServiceMonitor", "PodMonitor"):
            continue
        mid = object_id(mon)
        reached = [c for w in workloads(objs) for c in monitor_calls(objs, w) if c.caller == mid]
        if not reached:
            problems.append(f"{mid}: selects no workload (through a Service for a ServiceMonitor)")
        elif not any(c.port for c in reached):
            problems.append(f"{mid}: its port is not a port of the workloads it selects")
    return problems
