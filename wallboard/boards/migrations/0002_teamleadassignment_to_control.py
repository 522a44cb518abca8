# Team-lead assignments say who may act on a queue: they moved to wallboard.control, which decides
# that. The table is renamed here and the model created in control's state (control 0002).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("boards", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.AlterModelTable("TeamLeadAssignment", "control_teamleadassignment"),
            ],
            state_operations=[
                migrations.DeleteModel("TeamLeadAssignment"),
            ],
        ),
    ]
