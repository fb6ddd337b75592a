"""Node configuration, read only from the environment (like a pod)."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from core.tier_policy import DEFAULT_TIER_POLICY, TIERS  # pure data; needs no Django settings

_NEVER = {"", "none", "never", "null", "off"}


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class NodeConfig:
    tier: str
    max_hot_tenants: int
    hot_to_warm_seconds: float | None  # None: never (the tier is kept warm)
    warm_to_cold_seconds: float | None
    data_root: Path
    service_token: str
    platform_url: str  # "" disables state reports and key fetches
    pod_id: str
    host: str = "0.0.0.0"  # noqa: S104 - a pod listens on all interfaces
    port: int = 8000  # the public listener: chat, forwarded by the gateway
    internal_port: int = 8001  # the internal listener: /internal/..., the platform's and the gateway's own calls
    object_store_root: Path | None = None
    s3_endpoint_url: str = ""
    s3_bucket: str = ""
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    s3_region: str = "us-east-1"
    max_body_bytes: int = 1 << 20
    sweep_interval_seconds: float = 5.0
    report_backoff_initial: float = 0.5
    report_backoff_max: float = 30.0
    platform_timeout_seconds: float = 5.0
    recent_messages_in_blob: int = 50
    token_delay_seconds: float = 0.0
    drain_seconds: float = 60.0  # at shutdown, context blobs not written by then are abandoned
    # In a cluster: the Kubernetes API (the kubelet sets KUBERNETES_SERVICE_*) and this pod (the downward API), so
    # the node can keep its pod's deletion cost current (deletion_cost.py); "" outside a cluster.
    kube_api_url: str = ""
    pod_name: str = ""
    pod_namespace: str = ""
    deletion_cost_interval_seconds: float = 30.0  # at most one patch per interval, and only when the count changed

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NodeConfig:
        env = os.environ if env is None else env
        tier = env.get("PERCOLATE_TENANT_TIER", "B").strip().upper()
        if tier not in TIERS:
            raise ConfigError(f"PERCOLATE_TENANT_TIER must be one of {', '.join(TIERS)}, not {tier!r}")
        policy = DEFAULT_TIER_POLICY[tier]
        token = env.get("PLATFORM_SERVICE_TOKEN", "")
        if len(token) < 16:
            raise ConfigError("PLATFORM_SERVICE_TOKEN must be set (16 characters or more)")
        data_root = env.get("TENANT_DATA_ROOT", "")
        if not data_root:
            raise ConfigError("TENANT_DATA_ROOT must be set")
        store_root = env.get("OBJECT_STORE_ROOT", "")
        s3_endpoint = env.get("S3_ENDPOINT_URL", "")
        if not s3_endpoint and not store_root:
            raise ConfigError("set OBJECT_STORE_ROOT (a local directory) or S3_ENDPOINT_URL (and S3_BUCKET)")
        cfg = cls(
            tier=tier,
            max_hot_tenants=_int(env, "PERCOLATE_MAX_HOT_TENANTS", policy.max_hot_per_pod, minimum=1),
            hot_to_warm_seconds=_seconds(env, "PERCOLATE_HOT_TO_WARM_SECONDS", policy.hot_to_warm_seconds),
            warm_to_cold_seconds=_seconds(env, "PERCOLATE_WARM_TO_COLD_SECONDS", policy.warm_to_cold_seconds),
            data_root=Path(data_root),
            service_token=token,
            platform_url=env.get("PLATFORM_URL", "").rstrip("/"),
            pod_id=env.get("POD_ID") or socket.gethostname(),
            host=env.get("HOST", "0.0.0.0"),  # noqa: S104
            port=_int(env, "PORT", 8000, minimum=0),
            internal_port=_int(env, "INTERNAL_PORT", 8001, minimum=0),
            object_store_root=Path(store_root) if store_root and not s3_endpoint else None,
            s3_endpoint_url=s3_endpoint,
            s3_bucket=env.get("S3_BUCKET", "percolate"),  # the platform's default bucket too
            s3_access_key_id=env.get("S3_ACCESS_KEY_ID", ""),
            s3_secret_access_key=env.get("S3_SECRET_ACCESS_KEY", ""),
            s3_region=env.get("S3_REGION", "us-east-1"),
            max_body_bytes=_int(env, "PERCOLATE_MAX_BODY_BYTES", 1 << 20, minimum=1024),
            sweep_interval_seconds=_float(env, "PERCOLATE_IDLE_SWEEP_SECONDS", 5.0),
            report_backoff_initial=_float(env, "PERCOLATE_REPORT_BACKOFF_SECONDS", 0.5),
            report_backoff_max=_float(env, "PERCOLATE_REPORT_BACKOFF_MAX_SECONDS", 30.0),
            platform_timeout_seconds=_float(env, "PERCOLATE_PLATFORM_TIMEOUT_SECONDS", 5.0),
            recent_messages_in_blob=_int(env, "PERCOLATE_BLOB_RECENT_MESSAGES", 50, minimum=1),
            token_delay_seconds=_float(env, "PERCOLATE_TOKEN_DELAY_MS", 0.0) / 1000.0,
            drain_seconds=_float(env, "PERCOLATE_DRAIN_SECONDS", 60.0),
            kube_api_url=_kube_api_url(env.get("KUBERNETES_SERVICE_HOST", ""), env.get("KUBERNETES_SERVICE_PORT", "")),
            pod_name=env.get("POD_NAME", ""),
            pod_namespace=env.get("POD_NAMESPACE", ""),
            deletion_cost_interval_seconds=_float(env, "PERCOLATE_DELETION_COST_SECONDS", 30.0),
        )
        if cfg.port and cfg.port == cfg.internal_port:
            raise ConfigError("PORT and INTERNAL_PORT must differ: the internal API has a listener of its own")
        return cfg


def _kube_api_url(host: str, port: str) -> str:
    host, port = host.strip(), port.strip() or "443"
    if not host:
        return ""
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, not {raw!r}") from exc
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from exc
    if value < 0:
        raise ConfigError(f"{name} must be >= 0")
    return value


def _seconds(env: Mapping[str, str], name: str, default: int | None) -> float | None:
    """An idle timeout: a number of seconds, or none/never (kept warm); unset means the tier policy's value."""
    if name not in env:
        return None if default is None else float(default)
    raw = env[name].strip().lower()
    if raw in _NEVER:
        return None
    return _float({name: raw}, name, 0.0)
