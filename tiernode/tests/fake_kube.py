"""A stand-in for the Kubernetes API server's pod PATCH, over HTTPS with its own CA (no real API server can run on
this machine: docs/decisions.md, #19 defect 6).

It checks what the API server checks for a patch of a pod's metadata: the path
``/api/v1/namespaces/NS/pods/NAME``, a bearer token it knows, the token's Role (get/patch on pods in its own
namespace only), a merge or strategic-merge patch content type, a JSON object body; it applies the patch (RFC 7386)
to the stored pod and then holds it to the admission policy (k8s/admission/): its own pod only, only the
deletion-cost annotation may change, and its value must be an int32 (as pod validation requires). Errors are
Kubernetes ``Status`` objects.
"""

from __future__ import annotations

import copy
import datetime
import ipaddress
import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PATCH_TYPES = {"application/merge-patch+json", "application/strategic-merge-patch+json"}
COST = "controller.kubernetes.io/pod-deletion-cost"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_tls(directory: Path, cn: str = "kubernetes-ca") -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca.crt, server.crt, server.key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # keyCertSign, cRLSign
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("kube-apiserver"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / "ca.crt", directory / "server.crt", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


@dataclass
class FakeKubeApi:
    tls_dir: Path
    tokens: dict[str, tuple[str, str]] = field(default_factory=dict)  # bound token -> (namespace, its pod's name)
    pods: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    refuse: int = 0  # answer every request with this status (e.g. 403: the Role is missing)
    delay: float = 0.0
    received: int = 0  # requests that arrived (``requests`` records them once answered)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def add_pod(self, namespace: str, name: str, annotations: dict[str, str] | None = None) -> None:
        meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/name": "tier-node"}}
        if annotations:
            meta["annotations"] = dict(annotations)
        self.pods[(namespace, name)] = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"x": 1}}

    def cost(self, namespace: str, name: str) -> str | None:
        with self.lock:
            return (self.pods[(namespace, name)]["metadata"].get("annotations") or {}).get(COST)

    def patches(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["status"] == 200]

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.received += 1
        if self.delay:
            time.sleep(self.delay)
        if self.refuse:
            return self.refuse, status(self.refuse, "Forbidden", "refused by the test")
        scheme, _, token = headers.get("authorization", "").partition(" ")
        who = self.tokens.get(token) if scheme == "Bearer" else None
        if who is None:
            return 401, status(401, "Unauthorized", "Unauthorized")
        parts = path.split("?")[0].strip("/").split("/")
        if len(parts) != 6 or parts[:3] != ["api", "v1", "namespaces"] or parts[4] != "pods":
            resource = parts[4] if len(parts) > 4 else "?"
            return 403, status(403, "Forbidden", f"cannot {method.lower()} resource {resource!r}")
        namespace, name = parts[3], parts[5]
        if namespace != who[0]:  # a Role binds in its own namespace only
            return 403, status(403, "Forbidden", f"cannot patch pods in the namespace {namespace!r}")
        if name != who[1]:  # the admission policy: a tier node patches its own pod only
            return 422, status(422, "Invalid", f"a tier node may patch only its own pod, not {name!r}")
        if method != "PATCH":
            return 405, status(405, "MethodNotAllowed", method)
        if headers.get("content-type", "").split(";")[0].strip() not in PATCH_TYPES:
            return 415, status(415, "UnsupportedMediaType", headers.get("content-type", ""))
        try:
            patch = json.loads(body)
        except ValueError:
            return 400, status(400, "BadRequest", "body is not JSON")
        if not isinstance(patch, dict):
            return 400, status(400, "BadRequest", "a merge patch of a pod must be a JSON object")
        with self.lock:
            pod = self.pods.get((namespace, name))
            if pod is None:
                return 404, status(404, "NotFound", f'pods "{name}" not found')
            patched = merge_patch(pod, patch)
            problem = _admission(pod, patched)
            if problem:
                return 422, status(422, "Invalid", problem)
            self.pods[(namespace, name)] = patched
            return 200, patched

    def start(self) -> FakeKubeApi:
        api = self
        _, cert, key = make_tls(self.tls_dir)

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                code, doc = api.handle(self.command, self.path, headers, body)
                with api.lock:
                    api.requests.append(
                        {"method": self.command, "path": self.path, "headers": headers, "body": body, "status": code}
                    )
                data = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PATCH = do_PUT = do_POST = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def _admission(old: dict[str, Any], new: dict[str, Any]) -> str:
    """The admission policy of k8s/admission/ and the pod validation of the annotation."""
    old_meta, new_meta = old["metadata"], new["metadata"]
    if old.get("spec") != new.get("spec"):
        return "only the pod-deletion-cost annotation may change: spec changed"
    for key in ("labels", "ownerReferences", "finalizers", "name", "namespace"):
        if old_meta.get(key) != new_meta.get(key):
            return f"only the pod-deletion-cost annotation may change: metadata.{key} changed"
    old_ann = {k: v for k, v in (old_meta.get("annotations") or {}).items() if k != COST}
    new_ann = {k: v for k, v in (new_meta.get("annotations") or {}).items() if k != COST}
    if old_ann != new_ann:
        return "only the pod-deletion-cost annotation may change: other annotations changed"
    value = (new_meta.get("annotations") or {}).get(COST)
    if value is not None:
        if not isinstance(value, str):
            return "metadata.annotations: Invalid value: annotations must be strings"
        try:
            number = int(value)
        except ValueError:
            return f"metadata.annotations[{COST}]: Invalid value: {value!r}: must be a 32bit integer"
        if not -(2**31) <= number < 2**31:
            return f"metadata.annotations[{COST}]: Invalid value: {value!r}: must be a 32bit integer"
    return ""
