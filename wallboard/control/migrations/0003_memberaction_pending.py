# An action is recorded before its PBX request and completed after: `ok` is unknown until then.

from django.db import migrations, models
from django.db.models import F


def finished_at_creation(apps, schema_editor):
    MemberAction = apps.get_model("control", "MemberAction")
    MemberAction.objects.update(finished=F("created"))


class Migration(migrations.Migration):

    dependencies = [
        ("control", "0002_teamleadassignment"),
    ]

    operations = [
        migrations.AlterField(
            model_name="memberaction",
            name="ok",
            field=models.BooleanField(null=True, verbose_name="accepted"),
        ),
        migrations.AddField(
            model_name="memberaction",
            name="reason",
            field=models.CharField(blank=True, max_length=32, verbose_name="reason"),
        ),
        migrations.AddField(
            model_name="memberaction",
            name="finished",
            field=models.DateTimeField(blank=True, null=True, verbose_name="finished"),
        ),
        migrations.RunPython(finished_at_creation, migrations.RunPython.noop),
    ]
