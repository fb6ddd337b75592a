"""Beat: scrape the tier pods' per-tenant metrics, then prune past retention."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from overview.metrics_scrape import prune_tenant_metrics, scrape_pods


@shared_task(name="overview.scrape_tenant_metrics", acks_late=True)
def scrape_tenant_metrics() -> dict[str, int]:
    result = scrape_pods()
    pruned = prune_tenant_metrics(older_than=timedelta(hours=settings.TENANT_METRICS_RETENTION_HOURS))
    return {"pods": result.pods, "rows": result.rows, "failed": len(result.failed), "pruned": pruned}
