from prometheus_client import generate_latest

from archival.models import ArchivalJob, JobStatus, JobType
from billing.models import BillingEvent, ProcessingStatus
from percolate_platform.worker_metrics import build_registry


def test_counts_come_from_the_database_and_the_queue_length_from_redis(tenant) -> None:
    ArchivalJob.objects.create(tenant=tenant, job_type=JobType.ARCHIVE, status=JobStatus.COMPLETED)
    ArchivalJob.objects.create(tenant=tenant, job_type=JobType.RESTORE, status=JobStatus.FAILED)
    BillingEvent.objects.create(
        event_type="invoice.paid", stripe_event_id="evt_1", processing_status=ProcessingStatus.FAILED
    )
    text = generate_latest(build_registry()).decode()
    assert 'percolate_archival_jobs_total{job_type="archive",status="completed"} 1.0' in text
    assert 'percolate_archival_jobs_total{job_type="restore",status="failed"} 1.0' in text
    assert 'percolate_billing_events_total{status="failed"} 1.0' in text
    assert 'celery_queue_length{queue_name="celery"}' in text
