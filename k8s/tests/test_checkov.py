"""checkov over each rendered overlay (k8s/hardening.py): every finding is one listed in k8s/checkov-accepted.yaml
with its reason, and every listed one still occurs (so the list cannot rot)."""

import pytest

from k8s import hardening, manifests


@pytest.mark.parametrize("env", manifests.OVERLAYS)
def test_checkov_finds_only_accepted_findings(env: str) -> None:
    assert hardening.hardening_problems(env, manifests.rendered_overlay(env)) == []


def test_every_accepted_finding_has_a_reason_and_known_overlays() -> None:
    import yaml

    entries = yaml.safe_load(hardening.ACCEPTED_FILE.read_text())
    for check, entry in entries.items():
        assert str(entry.get("reason", "")).strip(), check
        assert set(entry.get("envs", manifests.OVERLAYS)) <= set(manifests.OVERLAYS), check
