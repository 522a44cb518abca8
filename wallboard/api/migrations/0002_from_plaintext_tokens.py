# API tokens used to be DRF's authtoken rows, stored in plain text. Each one becomes a hashed
# ApiToken (programs keep working with the same key) and the plain-text table is dropped.

import hashlib

from django.db import migrations

_OLD_TABLE = "authtoken_token"


def hash_old_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if _OLD_TABLE not in connection.introspection.table_names():
        return
    ApiToken = apps.get_model("api", "ApiToken")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key, user_id FROM {_OLD_TABLE}")  # noqa: S608 - a constant
        rows = cursor.fetchall()
    for key, user_id in rows:
        ApiToken.objects.create(
            user_id=user_id,
            name="default",
            digest=hashlib.sha256(key.encode()).hexdigest(),
            shown=key[:8],
        )
    schema_editor.execute(f"DROP TABLE {_OLD_TABLE}")


class Migration(migrations.Migration):

    dependencies = [
        ("api", "0001_api_tokens"),
    ]

    operations = [
        migrations.RunPython(hash_old_tokens, migrations.RunPython.noop),
    ]
