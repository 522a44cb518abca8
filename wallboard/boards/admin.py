"""Admin for board configuration. Kiosk secrets are shown once, right after creation."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from wallboard.boards.forms import BoardAdminForm, KioskTokenAdminForm
from wallboard.boards.models import (
    Board,
    KioskToken,
    QueueDisplay,
    kiosk_token_hash,
)
from wallboard.boards.services import (
    board_changed,
    board_delete,
    kiosk_scope_changed,
    kiosk_token_revoke,
    kiosk_url,
)


@admin.register(QueueDisplay)
class QueueDisplayAdmin(admin.ModelAdmin):
    list_display = [
        "queue",
        "display_name",
        "waiting_amber",
        "waiting_red",
        "wait_amber_seconds",
        "wait_red_seconds",
        "flash",
    ]
    list_editable = ["display_name", "flash"]
    search_fields = ["queue", "display_name"]


@admin.register(Board)
class BoardAdmin(admin.ModelAdmin):
    form = BoardAdminForm
    list_display = ["name", "slug", "queues", "queues_per_page", "rotation_seconds", "sound_alert"]
    prepopulated_fields = {"slug": ["name"]}

    def save_model(self, request: HttpRequest, obj: Board, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change:
            board_changed(board=obj)

    def delete_model(self, request: HttpRequest, obj: Board) -> None:
        board_delete(board=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Board]) -> None:
        for board in queryset:
            board_delete(board=board)


@admin.register(KioskToken)
class KioskTokenAdmin(admin.ModelAdmin):
    form = KioskTokenAdminForm
    list_display = ["name", "queues", "board", "created", "revoked_at", "last_seen", "is_active"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), "board"]
    search_fields = ["name"]
    fields = ["name", "queues", "board", "all_queues", "created", "revoked_at", "last_seen"]
    readonly_fields = ["created", "revoked_at", "last_seen"]
    actions = ["revoke"]

    @admin.display(boolean=True, description=_("active"))
    def is_active(self, obj: KioskToken) -> bool:
        return obj.is_active

    def save_model(self, request: HttpRequest, obj: KioskToken, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            kiosk_scope_changed(kiosk_ids=[obj.pk])
            return
        secret = KioskToken.new_secret()
        obj.token_hash = kiosk_token_hash(secret)
        super().save_model(request, obj, form, change)
        url = kiosk_url(secret)
        messages.warning(
            request,
            format_html(
                "{} <a href='{}'>{}</a>",
                _("Kiosk URL (shown only now — copy it to the TV):"),
                url,
                url,
            ),
        )

    @admin.action(description=_("Revoke the selected kiosk tokens (closes open boards)"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[KioskToken]) -> None:
        tokens = list(queryset.filter(revoked_at__isnull=True))
        for token in tokens:
            kiosk_token_revoke(token=token)
        self.message_user(
            request,
            ngettext("%d kiosk token revoked.", "%d kiosk tokens revoked.", len(tokens))
            % len(tokens),
        )
