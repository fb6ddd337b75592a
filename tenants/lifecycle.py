"""The tenant state machine: the one place that says which hot/warm/cold moves are allowed."""

from tenants.models import State

# The design's chain (hot <-> warm -> cold -> archived -> restoring -> warm), plus the moves a pod needs:
# loading a cold tenant (cold -> warm/hot), evicting a hot one under memory pressure (hot -> cold), and a failed
# restore returning to archived. See docs/decisions.md.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    State.HOT: frozenset({State.WARM, State.COLD}),
    State.WARM: frozenset({State.HOT, State.COLD}),
    State.COLD: frozenset({State.WARM, State.HOT, State.ARCHIVED}),
    State.ARCHIVED: frozenset({State.RESTORING}),
    State.RESTORING: frozenset({State.WARM, State.ARCHIVED}),
}

# Moves that hand the tenant's data to a new owner, so a pod still holding the old generation must be fenced off.
GENERATION_BUMPING = frozenset({(State.COLD, State.ARCHIVED), (State.RESTORING, State.WARM)})


def is_allowed(current: str, target: str) -> bool:
    return target in ALLOWED_TRANSITIONS.get(current, frozenset())
