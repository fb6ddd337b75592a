"""One mailbox, one tenant (item 5 of issue 20): NFD, NFC, fullwidth and IDNA spellings are one email, stored in a
form that passes `format: email`; existing rows are brought to it by migration 0004, collisions reported."""

import importlib
from typing import Any

import pytest
from django.apps import apps
from jsonschema_rs import Draft202012Validator
from rest_framework.test import APIClient

from core.emails import normalize_email, normalize_email_prefix
from core.errors import InvalidInput
from tenants.models import AuditLog, Tenant
from tenants.tests.test_api import assert_error

pytestmark = pytest.mark.django_db

FORMAT_EMAIL = Draft202012Validator({"type": "string", "format": "email"}, validate_formats=True)
SPELLINGS = [
    "u@éxample.com",  # NFC
    "u@e\u0301xample.com",  # NFD
    "u@xn--xample-9ua.com",  # IDNA A-label
    "\uff55@\uff45\u0301\uff58\uff41\uff4d\uff50\uff4c\uff45.com",  # fullwidth, with a combining accent
    "U@ÉXAMPLE.COM",
    "u@éxample\uff0ecom",  # fullwidth full stop
]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_every_spelling_has_one_stored_form_that_passes_format_email(spelling: str) -> None:
    stored = normalize_email(spelling)
    assert stored == "u@xn--xample-9ua.com"
    assert FORMAT_EMAIL.is_valid(stored)


@pytest.mark.parametrize("spelling", SPELLINGS[1:])
def test_a_second_spelling_of_an_existing_mailbox_is_409(staff_api: APIClient, spelling: str) -> None:
    assert staff_api.post("/api/tenants/", {"email": SPELLINGS[0], "tier": "B"}, format="json").status_code == 201
    response = staff_api.post("/api/tenants/", {"email": spelling, "tier": "B"}, format="json")
    assert_error(response, 409, "conflict", {"email"})
    assert Tenant.objects.count() == 1


@pytest.mark.parametrize(
    "bad", ["jü@example.com", "a@xn--zz.com", "a@b", "a..b@example.com", "a@-b.com", "a@example.123", '"q"@a.com']
)
def test_what_is_not_a_mailbox_is_400(bad: str) -> None:
    with pytest.raises(InvalidInput):
        normalize_email(bad)


def test_ascii_hosts_with_double_hyphens_stay_valid() -> None:
    assert normalize_email("A@r3---sn-abc.example.com") == "a@r3---sn-abc.example.com"


def test_the_list_filter_and_the_admin_search_find_any_spelling(staff_api: APIClient, make_tenant: Any) -> None:
    tenant = make_tenant(email="u@éxample.com")
    for spelling in SPELLINGS:
        body = staff_api.get("/api/tenants/", {"email": spelling}).json()
        assert [row["id"] for row in body["results"]] == [str(tenant.id)]
    assert normalize_email_prefix("\uff35\uff33") == "us"


def test_the_migration_normalises_old_rows_and_reports_collisions(make_tenant: Any) -> None:
    migration = importlib.import_module("tenants.migrations.0004_normalise_emails")
    holder = make_tenant(email="v@xn--xample-9ua.com")
    nfd_twin = make_tenant(email="v-nfd@example.com")
    nfc = make_tenant(email="w@example.com")
    nfd = make_tenant(email="w2@example.com")
    broken = make_tenant(email="x@example.com")
    # Rows as an older release could have stored them (before emails were normalised).
    Tenant.objects.filter(pk=nfd_twin.pk).update(email="v@e\u0301xample.com")
    Tenant.objects.filter(pk=nfc.pk).update(email="w@éxample.com")
    Tenant.objects.filter(pk=nfd.pk).update(email="w@e\u0301xample.com")
    Tenant.objects.filter(pk=broken.pk).update(email="jü@example.com")

    migration.normalise_emails(apps, None)

    emails = dict(Tenant.objects.values_list("id", "email"))
    assert emails[holder.id] == "v@xn--xample-9ua.com"
    assert emails[nfd_twin.id] == "v@e\u0301xample.com"  # collides with the holder: left, reported
    assert emails[nfc.id] == "w@xn--xample-9ua.com"  # the older of two twins gets the form
    assert emails[nfd.id] == "w@e\u0301xample.com"
    assert emails[broken.id] == "jü@example.com"
    reported = AuditLog.objects.filter(action="tenant.email_not_normalised")
    assert {entry.tenant_id for entry in reported} == {nfd_twin.id, nfd.id, broken.id}
    assert reported.get(tenant=nfd_twin).metadata["held_by"] == str(holder.id)
    assert AuditLog.objects.get(action="tenant.email_normalised").tenant_id == nfc.id
    migration.normalise_emails(apps, None)  # safe to run again: nothing more changes
    assert dict(Tenant.objects.values_list("id", "email")) == emails
