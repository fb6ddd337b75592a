"""Existing emails to the stored form of core.emails (NFKC, lower case, IDNA domain).

Only rows with non-ASCII text can change (the services always stored ASCII emails lower-cased). Rows are taken
oldest first; a row whose normalised form another tenant already holds (its `xn--` spelling, or an older NFD/NFC
twin) keeps its email unchanged and gets an audit row `tenant.email_not_normalised` naming the holder, for staff to
resolve by hand: merging two tenants is not something a migration may decide. A row whose email does not normalise
at all (not a mailbox) is left alone the same way. Every change is an audit row `tenant.email_normalised`.
"""

from django.db import migrations

ACTOR = "migration:tenants.0004_normalise_emails"


def normalise_emails(apps, schema_editor):
    from core.emails import normalize_email
    from core.errors import InvalidInput

    Tenant = apps.get_model("tenants", "Tenant")
    AuditLog = apps.get_model("tenants", "AuditLog")

    def audit(tenant, action, metadata):
        AuditLog.objects.create(
            tenant=tenant, actor=ACTOR, action=action, resource_type="tenant", resource_id=tenant.pk, metadata=metadata
        )

    rows = Tenant.objects.filter(email__regex=r"[^\x01-\x7f]").order_by("created_at", "id")
    for tenant in rows.iterator(chunk_size=1000):
        try:
            normalised = normalize_email(tenant.email)
        except InvalidInput as exc:
            audit(tenant, "tenant.email_not_normalised", {"email": tenant.email, "reason": exc.fields["email"]})
            continue
        if normalised == tenant.email:
            continue
        holder = Tenant.objects.filter(email=normalised).exclude(pk=tenant.pk).values_list("id", flat=True).first()
        if holder is not None:
            audit(
                tenant,
                "tenant.email_not_normalised",
                {"email": tenant.email, "normalised": normalised, "held_by": str(holder)},
            )
            continue
        audit(tenant, "tenant.email_normalised", {"changes": {"email": [tenant.email, normalised]}})
        Tenant.objects.filter(pk=tenant.pk).update(email=normalised)


class Migration(migrations.Migration):
    dependencies = [("tenants", "0003_newest_first_indexes")]

    operations = [migrations.RunPython(normalise_emails, migrations.RunPython.noop, elidable=True)]
