"""The tenant changelist's "Move to tier…" action and the tenant page's moves panel (in progress and history)."""

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from core.admin_mixins import MAX_ACTION_ROWS, run_for_each
from core.audit import Actor
from moves.selectors import active_move, move_history
from moves.services import tenant_move
from tenants.models import Tier


@admin.action(description="Move to tier…", permissions=["change"])
def move_to_tier(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
    """Ask for the tier (and a reason) on a confirmation page, then start one move per selected tenant."""
    tier = request.POST.get("tier", "")
    if request.POST.get("post") != "yes" or tier not in Tier.values:
        selected = list(queryset.order_by()[: MAX_ACTION_ROWS + 1])
        context = {
            **modeladmin.admin_site.each_context(request),
            "title": "Move tenants to another tier",
            "opts": modeladmin.model._meta,
            "tenants": selected[:MAX_ACTION_ROWS],
            "too_many": len(selected) > MAX_ACTION_ROWS,
            "max_rows": MAX_ACTION_ROWS,
            "tiers": Tier.choices,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        if request.POST.get("post") == "yes":
            modeladmin.message_user(request, "Choose a tier.", messages.ERROR)
        return TemplateResponse(request, "admin/moves/move_to_tier.html", context)
    actor = Actor.from_request(request)
    reason = (request.POST.get("reason") or "").strip()[:500]
    run_for_each(
        modeladmin,
        request,
        queryset,
        lambda pk: tenant_move(tenant_id=pk, tier=tier, actor=actor, reason=reason),
        f"move(s) to tier {tier} started",
    )
    return None


def tenant_moves_panel(tenant_id: object) -> str:
    """The move in progress (if any) and the latest moves, each linking to its page."""
    running = active_move(str(tenant_id))
    now = (
        format_html(
            '<p><strong>Moving to tier {}</strong>: {} (step {}) — <a href="{}">move {}</a></p>',
            running.to_tier,
            running.status,
            running.step,
            reverse("admin:moves_move_change", args=[running.pk]),
            running.pk,
        )
        if running
        else format_html("<p>{}</p>", "No move in progress.")
    )
    rows = format_html_join(
        "",
        '<tr><td><a href="{}">{}</a></td><td>{} → {}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
        (
            (
                reverse("admin:moves_move_change", args=[m.pk]),
                f"{m.created_at:%Y-%m-%d %H:%M:%S}",
                m.from_tier,
                m.to_tier,
                m.status,
                m.failed_step or m.step,
                m.requested_by,
            )
            for m in move_history(str(tenant_id), limit=10)
        ),
    )
    if not rows:
        return now
    head = "<tr><th>requested</th><th>tiers</th><th>status</th><th>step</th><th>by</th></tr>"
    return format_html("{}<table>{}{}</table>", now, mark_safe(head), rows)  # noqa: S308 - a constant
