"""Admin: each queue's KPI rules are edited here (the service-level target, goal and formula the
boards and reports count by); call records and read cursors are shown only (they are the PBX's,
and the readers own them)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from wallboard.history.models import CallRecord, CdrDayCursor, QueueKpiSettings
from wallboard.history.services import kpi_rules_changed


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

    # The boards count today's figures by these rules: a change reaches them at once.
    def save_model(self, request: HttpRequest, obj: QueueKpiSettings, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        kpi_rules_changed()

    def delete_model(self, request: HttpRequest, obj: QueueKpiSettings) -> None:
        super().delete_model(request, obj)
        kpi_rules_changed()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[QueueKpiSettings]) -> None:
        super().delete_queryset(request, queryset)
        kpi_rules_changed()


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
