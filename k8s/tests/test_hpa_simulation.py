"""The HPA behaviours the manifests promise, checked by replaying the HPA algorithm (bench/hpa.py) against the
rendered HPAs: tier A never below 2 pods; tier A scales down at most 1 pod per 5 minutes, and only after a
10-minute window; tier C scales down fastest."""

import itertools
import json
import subprocess
import sys

import pytest

from bench import hpa as sim
from k8s import manifests

STEP = sim.SYNC_PERIOD


def drop_after_peak(tier, peak_pods=20, high_seconds=1800, low_seconds=7200):
    """Demand for peak_pods pods' worth of hot tenants, then none at all."""
    hpa = sim.load_tiers("prod")[tier]
    high = [int(peak_pods * hpa.hot_target)] * (high_seconds // STEP)
    demand = high + [0] * (low_seconds // STEP)
    samples = sim.simulate_tier(
        tier, hpa, sim.tier_policy()[tier], seconds=high_seconds + low_seconds, demand=demand, start_replicas=peak_pods
    )
    return samples, high_seconds


def test_full_day_run_prints_timeline_chart_and_json(tmp_path):
    chart = tmp_path / "hpa.png"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.hpa", "--chart", str(chart)],
        cwd=manifests.REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert set(summary["peak_replicas"]) == set(summary["min_replicas"]) == {"A", "B", "C"}
    assert summary["chart"] == str(chart)
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any(line.startswith("12:00") for line in lines)
    policy = sim.tier_policy()
    for tier in "ABC":
        assert policy[tier].min_pods <= summary["min_replicas"][tier] <= summary["peak_replicas"][tier]
        assert summary["peak_replicas"][tier] <= policy[tier].max_pods
    assert summary["min_replicas"]["A"] >= 2


def test_tier_a_never_below_two_pods_even_with_no_demand():
    hpa = sim.load_tiers("prod")["A"]
    samples = sim.simulate_tier("A", hpa, sim.tier_policy()["A"], seconds=6 * 3600, demand=[0])
    assert min(s.replicas for s in samples) == 2


def test_tier_a_scale_down_is_one_pod_per_five_minutes_after_ten_minutes():
    samples, drop_at = drop_after_peak("A")
    decreases = [(b.t, a.replicas - b.replicas) for a, b in itertools.pairwise(samples) if b.replicas < a.replicas]
    assert decreases, "tier A never scaled down"
    last_high_recommendation = drop_at - STEP
    assert decreases[0][0] >= last_high_recommendation + 600, "scaled down within the 10-minute window"
    assert all(n == 1 for _, n in decreases), decreases
    times = [t for t, _ in decreases]
    assert all(b - a >= 300 for a, b in itertools.pairwise(times)), times


def test_scale_up_is_not_throttled_like_scale_down():
    hpa = sim.load_tiers("prod")["A"]
    samples = sim.simulate_tier("A", hpa, sim.tier_policy()["A"], seconds=900, demand=[120])
    assert max(s.replicas for s in samples) == 20  # 120 hot / 6 per pod within 15 minutes


@pytest.mark.parametrize("tier", ["A", "B", "C"])
def test_every_tier_returns_to_its_minimum(tier):
    samples, _ = drop_after_peak(tier, low_seconds=4 * 3600 if tier == "A" else 7200)
    assert samples[-1].replicas == sim.tier_policy()[tier].min_pods


def test_tier_c_scales_down_fastest():
    def seconds_to_halve(tier):
        samples, drop_at = drop_after_peak(tier)
        return next(s.t for s in samples if s.t >= drop_at and s.replicas <= 10) - drop_at

    a, b, c = (seconds_to_halve(t) for t in "ABC")
    assert c < b < a, (a, b, c)


def test_hpa_tolerance_and_limits():
    hpa = sim.load_tiers("prod")["B"]
    assert hpa.proposal(13.0, 12.0, 10, 10) == 10  # within 10 %: no change
    assert hpa.proposal(14.0, 12.0, 10, 10) == 12
    assert hpa.proposal(6.0, 12.0, 10, 10) == 5
