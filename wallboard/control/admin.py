from django.contrib import admin

from wallboard.control.models import (
    CallBackClaim,
    CallBackDefault,
    MemberAction,
    TeamLeadAssignment,
)


@admin.register(MemberAction)
class MemberActionAdmin(admin.ModelAdmin):
    """The audit trail is evidence: readable by staff, never edited or deleted through the admin."""

    list_display = [
        "created", "username", "source", "action", "queue", "extension", "number", "ok", "code",
    ]  # fmt: skip
    list_filter = ["ok", "action", "source", "queue"]
    search_fields = ["username", "=queue", "=extension", "number", "detail"]
    date_hierarchy = "created"
    readonly_fields = [f.name for f in MemberAction._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(TeamLeadAssignment)
class TeamLeadAssignmentAdmin(admin.ModelAdmin):
    list_display = ["user", "queue"]
    list_filter = ["queue"]
    search_fields = ["user__username", "user__first_name", "user__last_name"]
    autocomplete_fields = ["user"]


@admin.register(CallBackClaim)
class CallBackClaimAdmin(admin.ModelAdmin):
    """Call backs and how they ended: written by the call-back service only. A claim that
    looks open here may have ended already by the records or the clock (it is ended in the
    database when the number is next called back)."""

    list_display = ["started", "number", "name", "extension", "queue", "ended", "end_reason"]
    list_filter = ["end_reason", "queue"]
    search_fields = ["number", "name", "=extension"]
    date_hierarchy = "started"
    readonly_fields = [f.name for f in CallBackClaim._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(CallBackDefault)
class CallBackDefaultAdmin(admin.ModelAdmin):
    list_display = ["user", "extension", "updated"]
    search_fields = ["user__username", "=extension"]
    autocomplete_fields = ["user"]
