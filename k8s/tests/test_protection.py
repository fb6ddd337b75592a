"""Deleting an Argo CD app keeps the data; the root app cannot widen its own rights (k8s/protection.py)."""

import pytest

from k8s import manifests, protection


@pytest.mark.parametrize("env", manifests.OVERLAYS)
def test_namespaces_and_claims_outlive_their_apps(env: str) -> None:
    assert protection.check_data_protection(env, manifests.rendered_overlay(env)) == []


@pytest.mark.parametrize("env", manifests.OVERLAYS)
def test_the_root_app_creates_only_applications_in_bootstrap_projects(env: str) -> None:
    assert protection.check_argo_projects(env) == []


def test_a_deletable_claim_is_reported() -> None:
    objs = manifests.rendered_overlay("prod")
    pvc = manifests.find(objs, "PersistentVolumeClaim", "tenant-data")
    pvc["metadata"]["annotations"][protection.SYNC_OPTIONS] = "Delete=false"
    pvc["spec"]["storageClassName"] = "efs-sc"
    problems = protection.check_data_protection("prod", [pvc])
    assert problems == [
        "PersistentVolumeClaim/percolate/tenant-data: argocd.argoproj.io/sync-options lacks Prune=false",
        "PersistentVolumeClaim/percolate/tenant-data: storage class 'efs-sc' reclaims with Delete (the default class), "
        "not Retain",
    ]


def test_prod_is_promoted_by_release_tags_only() -> None:
    assert protection.check_promotion() == []
