"""Changes made outside the board services (the admin's user, group and team-lead pages, a
logout) that narrow what an open board may do: its sockets re-check at once. Connected in
``BoardsConfig.ready``; the sockets' periodic re-check is the backstop for changes made around
the ORM."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import m2m_changed, post_delete, post_save

from wallboard.boards.services import user_access_changed
from wallboard.control.models import TeamLeadAssignment


def _user_saved(sender, instance, **kwargs) -> None:
    user_access_changed(user_id=instance.pk)


def _logged_out(sender, request, user, **kwargs) -> None:
    if user is not None:
        user_access_changed(user_id=user.pk)


def _assignment_changed(sender, instance, **kwargs) -> None:
    user_access_changed(user_id=instance.user_id)


def _groups_changed(sender, instance, action, reverse, model, pk_set, **kwargs) -> None:
    if not reverse:
        if action.startswith("post_"):
            user_access_changed(user_id=instance.pk)  # this user's groups changed
        return
    # A group's members changed: those added or removed, or all of them before a clear.
    if action in ("post_add", "post_remove"):
        user_ids = list(pk_set or ())
    elif action == "pre_clear":
        user_ids = list(instance.user_set.values_list("pk", flat=True))
    else:
        return
    for user_id in user_ids:
        user_access_changed(user_id=user_id)


def connect() -> None:
    user_model = get_user_model()
    user_logged_out.connect(_logged_out, dispatch_uid="boards-user-logged-out")
    post_save.connect(_user_saved, sender=user_model, dispatch_uid="boards-user-saved")
    post_delete.connect(_user_saved, sender=user_model, dispatch_uid="boards-user-deleted")
    for signal, uid in ((post_save, "saved"), (post_delete, "deleted")):
        signal.connect(
            _assignment_changed, sender=TeamLeadAssignment, dispatch_uid=f"boards-lead-{uid}"
        )
    m2m_changed.connect(
        _groups_changed, sender=user_model.groups.through, dispatch_uid="boards-user-groups"
    )
