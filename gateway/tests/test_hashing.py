import uuid

from gateway.pods.hashing import PodSet, ranked_pods

TENANTS = [str(uuid.UUID(int=i * 7919 + 13)) for i in range(20_000)]


def _assign(pods: list[str]) -> dict[str, str]:
    return {t: ranked_pods(t, pods)[0] for t in TENANTS}


def test_adding_a_pod_moves_about_one_nth_and_only_to_the_new_pod() -> None:
    before = _assign([f"pod-{i}" for i in range(4)])
    after = _assign([f"pod-{i}" for i in range(5)])
    moved = [t for t in TENANTS if before[t] != after[t]]
    assert all(after[t] == "pod-4" for t in moved)
    assert 0.15 < len(moved) / len(TENANTS) < 0.25  # about 1/5


def test_removing_a_pod_moves_only_its_tenants() -> None:
    pods = [f"pod-{i}" for i in range(5)]
    before = _assign(pods)
    after = _assign(pods[:2] + pods[3:])
    moved = {t for t in TENANTS if before[t] != after[t]}
    assert moved == {t for t in TENANTS if before[t] == "pod-2"}


def test_load_is_spread_evenly() -> None:
    counts: dict[str, int] = {}
    for pod in _assign([f"pod-{i}" for i in range(4)]).values():
        counts[pod] = counts.get(pod, 0) + 1
    assert max(counts.values()) / min(counts.values()) < 1.15


def test_ejected_pod_sends_its_tenants_to_their_next_choice_then_recovers() -> None:
    now = [0.0]
    pods = PodSet(pods=["a", "b", "c"], eject_seconds=10, clock=lambda: now[0])
    tenant = TENANTS[0]
    first, second = ranked_pods(tenant, ["a", "b", "c"])[:2]
    assert pods.choose(tenant) == (first, 0)
    pods.eject(first)
    assert pods.choose(tenant) == (second, 1)
    assert pods.ejected() == [first]
    now[0] = 10.5
    assert pods.choose(tenant) == (first, 0)


def test_all_pods_ejected_still_answers_first_choice_and_empty_set_none() -> None:
    pods = PodSet(pods=["a", "b"], clock=lambda: 0.0)
    pods.eject("a")
    pods.eject("b")
    assert pods.choose("t")[0] == ranked_pods("t", ["a", "b"])[0]
    assert PodSet(pods=[]).choose("t") == (None, 0)


def test_a_remembered_ranking_follows_a_change_of_pods() -> None:
    pod_set = PodSet(pods=("a:1", "b:1"))
    tenant = "00000000-0000-4000-8000-000000000001"
    assert pod_set.ranking(tenant) == ranked_pods(tenant, ("a:1", "b:1"))
    pod_set.pods = ("a:1", "b:1", "c:1")  # what discovery does when a pod joins
    assert pod_set.ranking(tenant) == ranked_pods(tenant, ("a:1", "b:1", "c:1"))
    pod_set.pods = ["c:1"]  # any sequence, even one changed in place later
    assert pod_set.choose(tenant) == ("c:1", 0)


def test_remembered_rankings_are_bounded() -> None:
    pod_set = PodSet(pods=("a:1", "b:1"), max_rankings=10)
    for i in range(25):
        pod_set.choose(f"tenant-{i}")
    assert len(pod_set._rankings) <= 10
