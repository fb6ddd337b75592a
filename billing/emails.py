"""Mail billing sends: the welcome after a checkout provisioned a tenant."""

import logging

from django.core.mail import send_mail

from tenants.models import Tenant

log = logging.getLogger(__name__)


def send_welcome(tenant: Tenant) -> None:
    """After the commit that created the tenant; a mail failure is logged, never undoes the provisioning."""
    body = (
        f"Welcome to Percolate.\n\nYour workspace {tenant.id} is ready on tier {tenant.tier}.\n"
        "Your subscription and invoices are managed through Stripe's customer portal.\n"
    )
    try:
        send_mail("Welcome to Percolate", body, None, [tenant.email])
    except Exception:
        log.exception("billing: the welcome mail to tenant %s was not sent", tenant.id)
