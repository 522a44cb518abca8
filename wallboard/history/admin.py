"""Admin: each queue's KPI rules are edited here; call records and read cursors are shown only
(they are the PBX's, and the readers own them)."""

from __future__ import annotations

from django.contrib import admin

from wallboard.history.models import CallRecord, CdrDayCursor, QueueKpiSettings


@admin.register(QueueKpiSettings)
class QueueKpiSettingsAdmin(admin.ModelAdmin):
    list_display = [
        "queue",
        "service_level_target_seconds",
        "service_level_target_percent",
        "service_level_formula",
        "short_abandon_seconds",
        "exclude_short_abandons",
    ]
    search_fields = ["=queue"]


class _ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(CallRecord)
class CallRecordAdmin(_ReadOnlyAdmin):
    list_display = ["id", "when", "caller", "queue", "outcome", "wait", "talk", "agent", "type"]
    list_filter = ["outcome", "queue", "type"]
    search_fields = ["=id", "caller", "=agent", "unique_id"]
    date_hierarchy = "day"
    show_full_result_count = False  # a count over every call ever stored is slow


@admin.register(CdrDayCursor)
class CdrDayCursorAdmin(_ReadOnlyAdmin):
    list_display = ["day", "rows", "requests", "read_at", "settled_at", "pass_started"]
