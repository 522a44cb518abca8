# Call backs of missed callers: audited as a member action with the number dialled, one open claim
# per number at a time, and each user's extension for calling back.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('auth', '0012_alter_user_first_name_max_length'),
        ('control', '0003_memberaction_pending'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='CallBackDefault',
            fields=[
                ('user', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='call_back_default', serialize=False, to=settings.AUTH_USER_MODEL, verbose_name='user')),
                ('extension', models.PositiveIntegerField(verbose_name='extension')),
                ('updated', models.DateTimeField(auto_now=True, verbose_name='updated')),
            ],
            options={
                'verbose_name': 'call-back extension',
                'verbose_name_plural': 'call-back extensions',
            },
        ),
        migrations.AddField(
            model_name='memberaction',
            name='number',
            field=models.CharField(blank=True, max_length=32, verbose_name='number called'),
        ),
        migrations.AlterField(
            model_name='memberaction',
            name='action',
            field=models.CharField(choices=[('pause', 'Pause'), ('unpause', 'Unpause'), ('add', 'Add to queue'), ('remove', 'Remove from queue'), ('call_back', 'Call back')], max_length=16, verbose_name='action'),
        ),
        migrations.CreateModel(
            name='CallBackClaim',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('number_key', models.CharField(max_length=16, verbose_name='number key')),
                ('number', models.CharField(max_length=32, verbose_name='number called')),
                ('queue', models.PositiveIntegerField(verbose_name='queue')),
                ('record', models.BigIntegerField(verbose_name='missed call record')),
                ('name', models.CharField(max_length=300, verbose_name='called back by')),
                ('extension', models.PositiveIntegerField(verbose_name='extension')),
                ('started', models.DateTimeField(verbose_name='started')),
                ('ended', models.DateTimeField(blank=True, null=True, verbose_name='ended')),
                ('end_reason', models.CharField(blank=True, max_length=16, verbose_name='how it ended')),
                ('action', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='claim', to='control.memberaction', verbose_name='audit record')),
                ('user', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='call_back_claims', to=settings.AUTH_USER_MODEL, verbose_name='user')),
            ],
            options={
                'verbose_name': 'call back in progress',
                'verbose_name_plural': 'call backs in progress',
                'ordering': ['-started', '-id'],
                'constraints': [models.UniqueConstraint(condition=models.Q(('ended__isnull', True)), fields=('number_key',), name='control_callback_one_open_claim')],
            },
        ),
    ]
