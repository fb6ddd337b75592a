"""The demo's scenario: what a newcomer sees the platform do, step by step, against the processes of `make run`.

Operator actions go through the platform's services (as `manage.py` commands do); clients talk to the gateway over
HTTP, as devices and apps would; background work (archive, restore, the metrics scrape) is done by the Celery worker.
Open the platform overview (/admin/overview/) beside it to watch the numbers move.
"""

from __future__ import annotations

import io
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.management import call_command
from django.db import DatabaseError, connection
from django.utils import timezone

from archival.evict import evict
from archival.models import ArchivalJob, JobStatus, JobType
from archival.services import archive_request
from billing.dunning import dunning_apply
from billing.models import BillingEvent, ProcessingStatus
from core.audit import Actor
from demo.client import Answer, DeviceKeys, chat
from demo.runner import Runner, StepFailed, wait_for
from gateway.auth.tokens import mint_platform_token
from moves.models import Move, MoveStatus
from moves.services import tenant_move
from overview.tasks import scrape_tenant_metrics
from tenants.device_services import device_register
from tenants.models import State, Tenant, TenantMetric, TenantState
from tenants.services import tenant_provision

ACTOR = Actor.system("demo")
STEPS = 13


@dataclass
class Demo:
    gateway: str
    web: str = "http://127.0.0.1:8000"
    timeout: float = 60.0
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    tenants: dict[str, Tenant] = field(default_factory=dict)
    stripe_email: str = ""
    device_token: str = ""

    # -- helpers -----------------------------------------------------------------------------------------------

    def token(self, tier: str) -> str:
        return mint_platform_token(master_key=settings.PLATFORM_MASTER_KEY, tenant_id=self.tenants[tier].id)

    def state(self, tier: str) -> TenantState:
        return TenantState.objects.get(tenant=self.tenants[tier])

    def wait_state(self, tier: str, *states: str) -> TenantState:
        return wait_for(
            lambda: (s := self.state(tier)).state in states and s,
            timeout=self.timeout,
            what=f"tenant {tier} to be {' or '.join(states)} (it is {self.state(tier).state})",
        )

    def answered(self, answer: Answer, *, model: str | None = None) -> Answer:
        if answer.status != 200:
            raise StepFailed(f"the gateway answered {answer.status}: {answer.text[:200]}")
        if model is not None and answer.model != model:
            raise StepFailed(f"expected an answer from {model}, got {answer.model}: {answer.text[:120]}")
        return answer

    def job_done(self, tier: str, job_type: str) -> ArchivalJob:
        def done() -> ArchivalJob | None:
            job = ArchivalJob.objects.filter(tenant=self.tenants[tier], job_type=job_type).order_by("-created_at")
            latest = job.first()
            if latest is not None and latest.status == JobStatus.FAILED:
                raise StepFailed(f"the {job_type} job failed: {latest.error_message}")
            return latest if latest is not None and latest.status == JobStatus.COMPLETED else None

        return wait_for(done, timeout=self.timeout, what=f"the worker to complete the {job_type}")

    # -- the steps ---------------------------------------------------------------------------------------------

    def preflight(self) -> str:
        """`make run` is up: the web app and its database, the gateway, and the same database as this process."""
        for url in (f"{self.web}/healthz", f"{self.gateway}/healthz"):
            try:
                with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (the demo's own URLs)
                    if response.status != 200:
                        raise StepFailed(f"{url} answered {response.status}")
            except OSError as exc:
                raise StepFailed(f"{url} does not answer ({exc}); start `make run` first, in another terminal") from exc
        try:
            Tenant.objects.exists()
        except DatabaseError as exc:
            raise StepFailed(f"the platform database is not ready ({exc}); is `make run` still starting?") from exc
        return f"web {self.web} and gateway {self.gateway} answer; database {connection.settings_dict['NAME']}"

    def provision(self) -> str:
        for tier in ("A", "B", "C"):
            email = f"demo-{self.run_id}-{tier.lower()}@example.com"
            self.tenants[tier] = tenant_provision(email=email, tier=tier, actor=ACTOR)
        return ", ".join(f"{t.tier}: {t.email}" for t in self.tenants.values())

    def stripe(self, kind: str, tier: str = "B") -> str:
        out = io.StringIO()
        url = f"{self.web}/billing/stripe/webhook/"
        call_command("stripe_send_test_event", kind, email=self.stripe_email, tier=tier, url=url, stdout=out)
        return out.getvalue().strip()

    def move_done(self, tenant: Tenant, tier: str) -> Move:
        def done() -> Move | None:
            move = Move.objects.filter(tenant=tenant, to_tier=tier).order_by("-created_at").first()
            if move is not None and move.status == MoveStatus.ROLLED_BACK:
                raise StepFailed(f"the move to tier {tier} was rolled back at {move.failed_step}: {move.error}")
            return move if move is not None and move.status == MoveStatus.COMPLETED else None

        return wait_for(done, timeout=self.timeout, what=f"the worker to move the tenant to tier {tier}")

    def stripe_checkout(self) -> str:
        self.stripe_email = f"demo-{self.run_id}-stripe@example.com"
        self.stripe("checkout")
        self.stripe("subscription", tier="B")
        tenant = wait_for(
            lambda: Tenant.objects.filter(email=self.stripe_email, tier="B").first(),
            timeout=self.timeout,
            what="the webhook's events to provision the tenant on tier B",
        )
        assert isinstance(tenant, Tenant)
        self.tenants["stripe"] = tenant
        return (
            f"checkout.session.completed and the subscription (tier B) provisioned {tenant.email} on tier {tenant.tier}"
        )

    def upgrade(self) -> str:
        tenant = self.tenants["B"]
        move = tenant_move(tenant_id=tenant.id, tier="A", actor=ACTOR, reason="demo: upgrade")
        done = self.move_done(tenant, "A")
        answer = self.answered(chat(self.gateway, self.device_token, "Do you still know when the launch is?"))
        if "Friday" not in answer.text:
            raise StepFailed(f"after the move the answer does not remember the launch: {answer.text[:200]}")
        return f"move {move.id} B -> A done by the worker in {done.duration_ms} ms; {answer.model} still remembers"

    def payment_failed(self) -> str:
        tenant = self.tenants["stripe"]
        self.stripe("payment-failed")
        wait_for(
            lambda: BillingEvent.objects.filter(
                event_type="invoice.payment_failed", tenant=tenant, processing_status=ProcessingStatus.PROCESSED
            ).exists(),
            timeout=self.timeout,
            what="the worker to process invoice.payment_failed",
        )
        grace = settings.STRIPE_DUNNING_GRACE_HOURS
        # Beat runs this sweep hourly; the demo runs it once with the clock past the grace period instead of waiting.
        dunning_apply(now=timezone.now() + timedelta(hours=grace + 1))
        self.move_done(tenant, "C")
        tenant.refresh_from_db()
        return f"payment failed; {grace:g} h of grace later the dunning sweep moved it to tier {tenant.tier}"

    def register_device(self) -> str:
        keys = DeviceKeys.generate()
        device = device_register(
            tenant_id=self.tenants["B"].id,
            device_name="Ada's laptop",
            platform="macos",
            public_key_signing=keys.public_signing,
            public_key_encryption=keys.public_encryption,
            actor=ACTOR,
        )
        self.device_token = keys.token(device_id=device.id, tenant_id=self.tenants["B"].id)
        return f"device {device.id} registered for tenant B; it signs its own token (EdDSA, kid = device id)"

    def device_chat(self) -> str:
        answer = self.answered(chat(self.gateway, self.device_token, "Hi, I am Ada. The launch is on Friday."))
        state = self.wait_state("B", State.HOT)
        return f"{answer.model} on pod {state.pod_id}: {answer.text[:70]!r}"

    def chat_each_tier(self) -> str:
        pods = []
        for tier in ("A", "C"):
            self.answered(chat(self.gateway, self.token(tier), f"Hello from tier {tier}"))
            pods.append(f"{tier} hot on {self.wait_state(tier, State.HOT).pod_id}")
        return "; ".join(pods)

    def evict_b(self) -> str:
        state = self.wait_state("B", State.HOT)
        result = evict(pod_id=state.pod_id or "", tenant_id=self.tenants["B"].id, generation=state.generation)
        self.wait_state("B", State.COLD)
        return f"pod {result.pod_id} evicted it (was {result.previous_state}); its context blob was written; now cold"

    def cold_answer(self) -> str:
        answer = self.answered(chat(self.gateway, self.device_token, "When is the launch?"))
        if "Friday" not in answer.text:
            raise StepFailed(f"the answer does not remember the launch: {answer.text[:200]}")
        return f"{answer.model} answered from what it remembered: {answer.text[:70]!r}"

    def archive_c(self) -> str:
        state = self.wait_state("C", State.HOT, State.WARM, State.COLD)
        job = archive_request(tenant_id=self.tenants["C"].id, actor=ACTOR)
        done = self.job_done("C", JobType.ARCHIVE)
        self.wait_state("C", State.ARCHIVED)
        return f"job {job.id} (queued while {state.state}) done by the worker: {done.data_size_mb or 0} MB sealed"

    def restore_on_chat(self) -> str:
        first = self.answered(chat(self.gateway, self.token("C"), "Are you there?"))
        self.job_done("C", JobType.RESTORE)
        self.wait_state("C", State.WARM, State.COLD, State.HOT)
        answer = self.answered(
            wait_for(
                lambda: (a := chat(self.gateway, self.token("C"), "And now?")).model == "percolate-reference" and a,
                timeout=self.timeout,
                what="the restored tenant to answer from its pod",
                every=1.0,
            ),
        )
        return f"first answer from {first.model} while restoring; then {answer.model}: {answer.text[:60]!r}"

    def metrics(self) -> str:
        sent = timezone.now()
        result = scrape_tenant_metrics.delay()
        rows = wait_for(
            lambda: TenantMetric.objects.filter(tenant__in=self.tenants.values(), recorded_at__gte=sent).count(),
            timeout=self.timeout,
            what="the worker to scrape the pods' per-tenant metrics",
        )
        return f"task {result.id}: {rows} samples stored for the demo's tenants (charted on their admin pages)"


def run(runner: Runner, demo: Demo) -> int:
    steps = [
        ("The platform is up (make run)", demo.preflight),
        ("Provision three tenants, one per tier", demo.provision),
        ("A signed Stripe checkout provisions a fourth tenant", demo.stripe_checkout),
        ("Register a device for the tier-B tenant", demo.register_device),
        ("Chat through the gateway with the device-signed token", demo.device_chat),
        ("Chat as the tier-A and tier-C tenants (platform tokens)", demo.chat_each_tier),
        ("Evict the tier-B tenant from its pod", demo.evict_b),
        ("Chat again: a cold answer from its context blob", demo.cold_answer),
        ("Archive the tier-C tenant (background worker)", demo.archive_c),
        ("Chat as tier C: restored on its next chat", demo.restore_on_chat),
        ("Upgrade the device's tenant from tier B to A", demo.upgrade),
        ("A failed payment: downgraded to tier C after the grace period", demo.payment_failed),
        ("Scrape per-tenant metrics from the pods (worker)", demo.metrics),
    ]
    assert len(steps) == STEPS
    for name, action in steps:
        if not runner.step(name, action) and not demo.tenants:
            break  # nothing to go on with: not up, or no tenants
        time.sleep(0.5)  # room to watch the overview move
    return runner.summary()
