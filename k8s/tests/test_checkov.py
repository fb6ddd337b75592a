"""checkov over the rendered prod overlay: every finding is one listed in k8s/checkov-accepted.yaml with its reason,
and every listed one still occurs (so the list cannot rot)."""

import json
import subprocess

import yaml

from k8s import checks

ACCEPTED = checks.K8S_DIR / "checkov-accepted.yaml"


def test_checkov_finds_only_accepted_findings(tmp_path) -> None:
    manifest = tmp_path / "prod.yaml"
    manifest.write_text(yaml.safe_dump_all(checks.rendered_overlay("prod"), sort_keys=False))
    proc = subprocess.run(
        [checks.checkov(), "-f", str(manifest), "--framework", "kubernetes", "--quiet", "--compact", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.stdout, proc.stderr[-2000:]
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    found = {(f["check_id"], f["resource"]) for r in reports for f in r["results"]["failed_checks"]}
    passed = sum(r["summary"]["passed"] for r in reports)
    accepted = {
        (check, resource)
        for check, entry in yaml.safe_load(ACCEPTED.read_text()).items()
        for resource in entry["resources"]
        if entry["reason"].strip()
    }
    assert passed > 100, "checkov ran no checks"
    assert sorted(found - accepted) == [], "findings not accepted in checkov-accepted.yaml"
    assert sorted(accepted - found) == [], "accepted in checkov-accepted.yaml but no longer found"
