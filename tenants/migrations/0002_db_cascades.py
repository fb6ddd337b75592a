from django.db import migrations

from percolate_platform.db_cascade import cascade_in_database


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]

    operations = [
        cascade_in_database("devices", "tenant_id", "tenants"),
        cascade_in_database("tenant_states", "tenant_id", "tenants"),
        cascade_in_database("tenant_keys", "tenant_id", "tenants"),
    ]
