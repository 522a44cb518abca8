# The service-level target moves to the call history's QueueKpiSettings: the boards' figures now
# come from the history's KPI engine, which counts them by that model's rules. Each queue's
# target is copied there; a QueueKpiSettings row that already has a target of its own (not the
# default) keeps it, since it was set where the figures are counted. 0005 removes the field.

from django.db import migrations

DEFAULT_TARGET_SECONDS = 20


def targets_to_history(apps, schema_editor):
    QueueDisplay = apps.get_model("boards", "QueueDisplay")
    QueueKpiSettings = apps.get_model("history", "QueueKpiSettings")
    for display in QueueDisplay.objects.order_by("queue"):
        rules = QueueKpiSettings.objects.filter(queue=display.queue).first()
        if rules is None:
            QueueKpiSettings.objects.create(
                queue=display.queue,
                service_level_target_seconds=display.service_level_target_seconds,
            )
        elif rules.service_level_target_seconds == DEFAULT_TARGET_SECONDS:
            rules.service_level_target_seconds = display.service_level_target_seconds
            rules.save(update_fields=["service_level_target_seconds"])


def targets_to_boards(apps, schema_editor):
    QueueDisplay = apps.get_model("boards", "QueueDisplay")
    QueueKpiSettings = apps.get_model("history", "QueueKpiSettings")
    for rules in QueueKpiSettings.objects.order_by("queue"):
        QueueDisplay.objects.update_or_create(
            queue=rules.queue,
            defaults={"service_level_target_seconds": rules.service_level_target_seconds},
        )


class Migration(migrations.Migration):

    dependencies = [
        ("boards", "0003_kiosktoken_all_queues"),
        ("history", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(targets_to_history, targets_to_boards),
    ]
