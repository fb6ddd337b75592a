"""HPA simulation: replay the Kubernetes HPA algorithm over a simulated day, per tier, from the rendered manifests.

    python -m bench.hpa [--overlay prod] [--chart var/bench/hpa.png] [--quiet]

Reads each tier's HorizontalPodAutoscaler (min/max, hot_tenants_count and memory targets, behavior) from
`kubectl kustomize k8s/overlays/<overlay>`, and the tier policy (core/tier_policy.py) for how long
a tenant stays hot after its last request and how many hot tenants a pod can hold. Tenant activity follows a
day curve (quiet night, morning ramp, lunch dip, evening peak); a tenant is hot while its idle time is under the
tier's hot -> warm timeout (tier A: kept warm, so once loaded it stays hot; the day starts right after a
rollout, so tier A tenants load on their first request of the day). Every 15 s (the controller's sync
period) the simulated HPA computes the desired replicas like kube-controller-manager does:

- per metric, usage ratio = current / target; within 10% tolerance nothing changes, otherwise
  ceil(ratio * ready pods) (pods still starting count as 0 when scaling up); the largest proposal wins;
- stabilization: scale-up uses the lowest, scale-down the highest recommendation within the windows;
- rate policies (Pods / Percent per period, selectPolicy Max/Min) limit each step, then min/max replicas.

Prints replicas over time per tier, writes a PNG chart, and ends with one JSON line:
{"peak_replicas": {...}, "min_replicas": {...}, "chart": "..."}.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import struct
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
SYNC_PERIOD = 15  # seconds, --horizontal-pod-autoscaler-sync-period
TOLERANCE = 0.1
POD_READY_SECONDS = 45  # image cached; readiness probe initialDelay 10 s + tenant warm-up
DAY = 24 * 3600

# Simulated population: tenants per tier and requests per active-hour per tenant at the day's peak.
TENANTS = {"A": 150, "B": 3000, "C": 20000}
PEAK_REQUEST_RATE = {"A": 6.0, "B": 3.0, "C": 1.2}  # requests per hour per tenant at the curve's peak
# Memory model: base per pod + per hot tenant (GiB), so memory utilization sits just under target at the hot target.
POD_BASE_MEMORY_GIB = {"A": 0.5, "B": 0.4, "C": 0.3}
HOT_TENANT_MEMORY_GIB = {"A": 0.3, "B": 0.13, "C": 0.055}


def day_curve(t: float) -> float:
    """Relative activity (0..1) at second t of the day (UTC)."""
    h = (t % DAY) / 3600
    night = 0.04
    morning = math.exp(-(((h - 10.0) / 2.2) ** 2))
    lunch_dip = -0.25 * math.exp(-(((h - 13.0) / 0.8) ** 2))
    afternoon = 0.8 * math.exp(-(((h - 15.5) / 2.0) ** 2))
    evening = 1.0 * math.exp(-(((h - 20.5) / 1.6) ** 2))
    return max(night, min(1.0, night + morning * 0.7 + lunch_dip + afternoon + evening))


# ----------------------------------------------------------------------------------------------------------------
# the HPA algorithm (pkg/controller/podautoscaler/horizontal.go, replica_calculator.go)


@dataclass
class ScalingRules:
    window: int
    select: str
    policies: list[tuple[str, int, int]]  # (type, value, periodSeconds)

    @classmethod
    def from_spec(cls, spec: dict[str, Any] | None, direction: str) -> ScalingRules:
        if direction == "up":
            default = cls(0, "Max", [("Percent", 100, 15), ("Pods", 4, 15)])
        else:
            default = cls(300, "Max", [("Percent", 100, 15)])
        if not spec:
            return default
        return cls(
            window=spec.get("stabilizationWindowSeconds", default.window),
            select=spec.get("selectPolicy", "Max"),
            policies=[(str(p["type"]), int(p["value"]), int(p["periodSeconds"])) for p in spec.get("policies") or []]
            or default.policies,
        )


@dataclass
class HPA:
    name: str
    min_replicas: int
    max_replicas: int
    hot_target: float
    memory_target: float | None
    memory_request_gib: float
    up: ScalingRules
    down: ScalingRules
    recommendations: list[tuple[float, int]] = field(default_factory=list)
    events: list[tuple[float, int]] = field(default_factory=list)  # (time, replica change)

    @classmethod
    def from_manifests(cls, hpa: dict[str, Any], deployment: dict[str, Any]) -> HPA:
        spec = hpa["spec"]
        hot_target = memory_target = None
        for m in spec["metrics"]:
            if m["type"] == "Pods" and m["pods"]["metric"]["name"] == "hot_tenants_count":
                hot_target = float(m["pods"]["target"]["averageValue"])
            if m["type"] == "Resource" and m["resource"]["name"] == "memory":
                memory_target = float(m["resource"]["target"]["averageUtilization"])
        if hot_target is None:
            raise ValueError(f"{hpa['metadata']['name']}: no hot_tenants_count Pods metric")
        request = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"]
        behavior = spec.get("behavior") or {}
        return cls(
            name=hpa["metadata"]["name"],
            min_replicas=spec.get("minReplicas", 1),
            max_replicas=spec["maxReplicas"],
            hot_target=hot_target,
            memory_target=memory_target,
            memory_request_gib=parse_gib(request),
            up=ScalingRules.from_spec(behavior.get("scaleUp"), "up"),
            down=ScalingRules.from_spec(behavior.get("scaleDown"), "down"),
        )

    # -- replica calculator ---------------------------------------------------------------------------------

    @staticmethod
    def proposal(current_avg: float, target: float, replicas: int, ready: int) -> int:
        ratio = current_avg / target
        if abs(ratio - 1.0) <= TOLERANCE:
            return replicas
        if ratio > 1.0 and ready < replicas:
            # pods that are not ready yet count as using nothing when scaling up
            ratio = current_avg * ready / (target * replicas)
            if ratio <= 1.0 + TOLERANCE:
                return replicas
            return math.ceil(ratio * replicas)
        return math.ceil(ratio * ready)

    def desired(self, now: float, replicas: int, ready: int, hot_per_ready_pod: float, memory_util: float) -> int:
        proposals = [self.proposal(hot_per_ready_pod, self.hot_target, replicas, ready)]
        if self.memory_target:
            proposals.append(self.proposal(memory_util, self.memory_target, replicas, ready))
        recommendation = max(proposals)
        return self.normalize(now, replicas, recommendation)

    # -- behavior -------------------------------------------------------------------------------------------

    def normalize(self, now: float, current: int, recommendation: int) -> int:
        # stabilizeRecommendationWithBehaviors
        up_cutoff, down_cutoff = now - self.up.window, now - self.down.window
        up_rec = down_rec = recommendation
        for t, rec in self.recommendations:
            if t > up_cutoff:
                up_rec = min(up_rec, rec)
            if t > down_cutoff:
                down_rec = max(down_rec, rec)
        stabilized = current
        if stabilized < up_rec:
            stabilized = up_rec
        if stabilized > down_rec:
            stabilized = down_rec
        longest = max(self.up.window, self.down.window)
        self.recommendations = [(t, r) for t, r in self.recommendations if t > now - longest] + [(now, recommendation)]
        # convertDesiredReplicasWithBehaviorRate
        desired = stabilized
        if desired > current:
            desired = min(desired, self.scale_up_limit(now, current), self.max_replicas)
        elif desired < current:
            desired = max(desired, self.scale_down_limit(now, current), self.min_replicas)
        return max(self.min_replicas, min(self.max_replicas, desired))

    def _changed_in(self, now: float, period: int, sign: int) -> int:
        return sum(abs(d) for t, d in self.events if t > now - period and (d > 0) == (sign > 0))

    def scale_up_limit(self, now: float, current: int) -> int:
        if self.up.select == "Disabled":
            return current
        limits = []
        for kind, value, period in self.up.policies:
            start = current - self._changed_in(now, period, +1)
            limits.append(start + value if kind == "Pods" else math.ceil(start * (1 + value / 100)))
        return max(limits) if self.up.select == "Max" else min(limits)

    def scale_down_limit(self, now: float, current: int) -> int:
        if self.down.select == "Disabled":
            return current
        limits = []
        for kind, value, period in self.down.policies:
            start = current + self._changed_in(now, period, -1)
            limits.append(start - value if kind == "Pods" else int(start * (1 - value / 100)))
        # scaling down, "Max" (largest change) is the smallest limit
        return min(limits) if self.down.select == "Max" else max(limits)

    def record(self, now: float, change: int) -> None:
        if change:
            self.events.append((now, change))
        longest = max([p for _, _, p in self.up.policies + self.down.policies] + [0])
        self.events = [(t, d) for t, d in self.events if t > now - longest]


def parse_gib(quantity: str) -> float:
    units = {"Ki": 2**-20, "Mi": 2**-10, "Gi": 1, "Ti": 2**10, "M": 1e6 / 2**30, "G": 1e9 / 2**30}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * factor
    return float(quantity) / 2**30


# ----------------------------------------------------------------------------------------------------------------
# the simulated day


@dataclass
class Sample:
    t: int
    hot: int
    replicas: int
    ready: int


def hot_probability(t: float, rate_per_hour: float, hot_seconds: float | None) -> float:
    """P(a tenant had >= 1 request in the last hot_seconds) for a Poisson stream with rate rate_per_hour*curve."""
    if hot_seconds is None:
        # kept warm (tier A): hot from its first request after the day's rollout at 00:00, never demoted after
        steps = 48
        integral = sum(day_curve(t * (i + 0.5) / steps) for i in range(steps)) * t / steps
        return 1.0 - math.exp(-rate_per_hour / 3600 * integral)
    steps = 12
    integral = sum(day_curve(t - hot_seconds * (i + 0.5) / steps) for i in range(steps)) * hot_seconds / steps
    return 1.0 - math.exp(-rate_per_hour / 3600 * integral)


def simulate_tier(
    tier: str,
    hpa: HPA,
    policy: Any,
    seconds: int = DAY,
    demand: list[int] | None = None,
    start_replicas: int | None = None,
    seed: int = 7,
) -> list[Sample]:
    """Replay one tier. `demand` (hot tenants per sync period) overrides the day model (used by tests)."""
    rng = random.Random(f"{seed}-{tier}")
    replicas = start_replicas or hpa.min_replicas
    starting: list[float] = []  # ready times of pods still starting
    samples = []
    n = TENANTS[tier]
    for step, now in enumerate(range(0, seconds, SYNC_PERIOD)):
        if demand is not None:
            hot = demand[min(step, len(demand) - 1)]
        else:
            p = hot_probability(now, PEAK_REQUEST_RATE[tier], policy.hot_to_warm_seconds)
            mean = n * p
            hot = max(0, min(n, round(rng.gauss(mean, math.sqrt(max(mean * (1 - p), 1e-9))))))
        starting = [r for r in starting if r > now]
        ready = max(1, replicas - len(starting))
        # each ready pod holds at most max_hot_per_pod hot tenants; the rest wait (context-blob answers)
        hot_per_pod = min(hot / ready, policy.max_hot_per_pod)
        memory_util = (
            100 * (POD_BASE_MEMORY_GIB[tier] + hot_per_pod * HOT_TENANT_MEMORY_GIB[tier]) / hpa.memory_request_gib
        )
        desired = hpa.desired(now, replicas, ready, hot_per_pod, memory_util)
        change = desired - replicas
        hpa.record(now, change)
        if change > 0:
            starting += [now + POD_READY_SECONDS] * change
        elif change < 0:
            starting = sorted(starting)[: max(0, len(starting) + change)]
        replicas = desired
        samples.append(Sample(now, hot, replicas, ready))
    return samples


def load_tiers(overlay: str = "prod") -> dict[str, HPA]:
    sys.path.insert(0, str(REPO_ROOT))
    from k8s import manifests, tier_figures

    objs = manifests.render(f"k8s/overlays/{overlay}")
    return {
        tier: HPA.from_manifests(
            tier_figures.tier_hpa(objs, tier), manifests.find(objs, "Deployment", f"tier-{tier.lower()}")
        )
        for tier in ("A", "B", "C")
    }


def tier_policy() -> dict[str, Any]:
    sys.path.insert(0, str(REPO_ROOT))
    from core.tier_policy import DEFAULT_TIER_POLICY

    return dict(DEFAULT_TIER_POLICY)


# ----------------------------------------------------------------------------------------------------------------
# chart


def write_chart(results: dict[str, list[Sample]], path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        write_png_fallback(results, path)
        return "pure-python"
    fig, axes = plt.subplots(len(results), 1, figsize=(11, 3.2 * len(results)), sharex=True)
    for ax, (tier, samples) in zip(axes, results.items(), strict=True):
        hours = [s.t / 3600 for s in samples]
        ax.plot(hours, [s.replicas for s in samples], label="replicas", color="tab:blue")
        ax.set_ylabel(f"tier {tier} pods")
        twin = ax.twinx()
        twin.plot(hours, [s.hot for s in samples], label="hot tenants", color="tab:orange", alpha=0.5)
        twin.set_ylabel("hot tenants")
        ax.grid(alpha=0.3)
        ax.set_title(f"Tier {tier}: replicas (blue) and hot tenants (orange)")
    axes[-1].set_xlabel("hour of day (UTC)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return "matplotlib"


def write_png_fallback(results: dict[str, list[Sample]], path: Path, width: int = 960, row: int = 200) -> None:
    """Replica lines, one band per tier, as an RGB PNG written with zlib (no plotting library)."""
    height = row * len(results)
    pixels = [bytearray(b"\xff" * width * 3) for _ in range(height)]
    colours = [(31, 119, 180), (255, 127, 14), (44, 160, 44)]
    for band, (samples, colour) in enumerate(zip(results.values(), colours, strict=False)):
        top = max(s.replicas for s in samples) or 1
        for x in range(width):
            s = samples[min(len(samples) - 1, x * len(samples) // width)]
            y = band * row + row - 5 - int((row - 10) * s.replicas / top)
            for dy in (0, 1):
                pixels[min(height - 1, y + dy)][x * 3 : x * 3 + 3] = bytes(colour)
        for x in range(width):
            pixels[band * row][x * 3 : x * 3 + 3] = b"\x80\x80\x80"
    raw = b"".join(b"\x00" + bytes(r) for r in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    path.write_bytes(png)


# ----------------------------------------------------------------------------------------------------------------


def run(overlay: str = "prod", chart: Path | None = None, quiet: bool = False) -> dict[str, Any]:
    policy = tier_policy()
    hpas = load_tiers(overlay)
    results = {tier: simulate_tier(tier, hpa, policy[tier]) for tier, hpa in hpas.items()}
    if not quiet:
        print(f"HPA simulation, overlay {overlay}: one day, sync every {SYNC_PERIOD}s, tenants {TENANTS}")
        for tier, hpa in hpas.items():
            print(
                f"  tier {tier}: {hpa.min_replicas}-{hpa.max_replicas} pods, target {hpa.hot_target:g} hot/pod, "
                f"memory {hpa.memory_target:g}%, scale-down window {hpa.down.window}s {hpa.down.policies}, "
                f"scale-up window {hpa.up.window}s {hpa.up.policies}"
            )
        print()
        print("time   " + "".join(f"{'tier ' + t + ' hot/pods':>22}" for t in results))
        steps_per_30min = 1800 // SYNC_PERIOD
        for i in range(0, DAY // SYNC_PERIOD, steps_per_30min):
            t = results["A"][i].t
            cells = "".join(f"{s[i].hot:>15}/{s[i].replicas:<6}" for s in results.values())
            print(f"{t // 3600:02d}:{t % 3600 // 60:02d}  {cells}")
    chart = chart or REPO_ROOT / "var" / "bench" / "hpa.png"
    how = write_chart(results, chart)
    summary: dict[str, Any] = {
        "peak_replicas": {t: max(s.replicas for s in samples) for t, samples in results.items()},
        "min_replicas": {t: min(s.replicas for s in samples) for t, samples in results.items()},
        "peak_hot_tenants": {t: max(s.hot for s in samples) for t, samples in results.items()},
        "chart": str(chart),
    }
    if not quiet:
        print()
        print(f"chart ({how}): {chart}")
        print("reference: tier policy pods A 2-50, B 1-100, C 1-200 (shared/design.md)")
        peaks = ", ".join(f"{t} {v}" for t, v in summary["peak_replicas"].items())
        print(f"peak replicas over the simulated day: {peaks}")
    print(json.dumps(summary))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--overlay", default="prod", choices=["prod", "dev"])
    parser.add_argument("--chart", type=Path, default=None)
    parser.add_argument("--quiet", action="store_true", help="print only the closing JSON line")
    args = parser.parse_args(argv)
    run(args.overlay, args.chart, args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
