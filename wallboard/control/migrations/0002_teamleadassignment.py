# The model moved here from wallboard.boards; its table was renamed by boards 0002.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("control", "0001_initial"),
        ("boards", "0002_teamleadassignment_to_control"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="TeamLeadAssignment",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("queue", models.PositiveIntegerField(verbose_name="queue number")),
                        ("user", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="team_lead_assignments", to=settings.AUTH_USER_MODEL, verbose_name="user")),
                    ],
                    options={
                        "verbose_name": "team-lead assignment",
                        "verbose_name_plural": "team-lead assignments",
                        "ordering": ["user__username", "queue"],
                        "constraints": [models.UniqueConstraint(fields=("user", "queue"), name="team_lead_queue_unique")],
                    },
                ),
            ],
        ),
    ]
