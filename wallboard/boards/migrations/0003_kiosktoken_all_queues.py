# "Every queue" becomes an explicit choice on a kiosk token: a token whose board is deleted
# (board set to NULL) must show nothing rather than every queue. Tokens that showed every queue
# before (no queues of their own, no board) keep doing so.

from django.db import migrations, models

import wallboard.boards.models


def mark_all_queue_tokens(apps, schema_editor):
    KioskToken = apps.get_model("boards", "KioskToken")
    for token in KioskToken.objects.filter(board__isnull=True):
        if not token.queues:
            token.all_queues = True
            token.save(update_fields=["all_queues"])


class Migration(migrations.Migration):

    dependencies = [
        ("boards", "0002_teamleadassignment_to_control"),
    ]

    operations = [
        migrations.AddField(
            model_name="kiosktoken",
            name="all_queues",
            field=models.BooleanField(
                default=False,
                help_text="Without its own queues and without a board the token shows every queue only when this is ticked, else none: deleting a board never widens what its TVs show.",
                verbose_name="every queue",
            ),
        ),
        migrations.AlterField(
            model_name="kiosktoken",
            name="queues",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="Empty = the board's queues (or every queue, if so ticked).",
                validators=[wallboard.boards.models.validate_queue_list],
                verbose_name="queues",
            ),
        ),
        migrations.RunPython(mark_all_queue_tokens, migrations.RunPython.noop),
    ]
