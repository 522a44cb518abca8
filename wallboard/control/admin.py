from django.contrib import admin

from wallboard.control.models import MemberAction, TeamLeadAssignment


@admin.register(MemberAction)
class MemberActionAdmin(admin.ModelAdmin):
    """The audit trail is evidence: readable by staff, never edited or deleted through the admin."""

    list_display = ["created", "username", "source", "action", "queue", "extension", "ok", "code"]
    list_filter = ["ok", "action", "source", "queue"]
    search_fields = ["username", "=queue", "=extension", "detail"]
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
