from django.db import migrations

from percolate_platform.db_cascade import cascade_in_database


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [
        cascade_in_database("subscriptions", "tenant_id", "tenants"),
    ]
