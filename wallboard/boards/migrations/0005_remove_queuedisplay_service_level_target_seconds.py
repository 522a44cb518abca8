# The service-level target now lives in history.QueueKpiSettings (copied there by 0004).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("boards", "0004_service_level_target_to_history"),
    ]

    operations = [
        migrations.RemoveField(
            model_name="queuedisplay",
            name="service_level_target_seconds",
        ),
    ]
