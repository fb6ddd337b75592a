"""Admin action on billing events: "Process again" sends the selected events through processing, past the attempt
limit (an event already processed or ignored is left as it is)."""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from billing.intake import enqueue
from core.admin_mixins import run_for_each


@admin.action(description="Process again", permissions=["change"])
def process_again(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    run_for_each(modeladmin, request, queryset, lambda pk: enqueue([pk], manual=True), "event(s) sent to processing")
