"""Backups and drills in the admin: read-only lists (runs are made by the command, the CronJob and beat)."""

from django.contrib import admin

from backups.models import PlatformBackup, RestoreDrill
from core.admin_mixins import ActionsOnlyAdminMixin


@admin.register(PlatformBackup)
class PlatformBackupAdmin(ActionsOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("name", "status", "sealed_bytes", "dump_bytes", "duration_seconds", "completed_at", "pruned_at")
    list_filter = ("status",)
    search_fields = ("name",)
    ordering = ("-started_at",)
    actions: tuple[str, ...] = ()


@admin.register(RestoreDrill)
class RestoreDrillAdmin(ActionsOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("backup_name", "status", "target", "restore_seconds", "duration_seconds", "completed_at")
    list_filter = ("status",)
    search_fields = ("backup_name",)
    ordering = ("-started_at",)
    actions: tuple[str, ...] = ()
