"""Revoked tokens move from Redis keys (`revoked_jwt:<jti>`, expiring with the token) to a table.

The copy keeps every logout made before the upgrade in force. It needs the Redis the
project was using (REDIS_URL); without one (the embedded default) there is nothing to copy.
"""

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import migrations, models

OLD_PREFIX = "revoked_jwt:"


def copy_from_redis(apps, schema_editor):
    if not settings.REDIS_URL:
        return
    from infrastructure import backends

    client = backends.redis_client()  # a cluster's client on a Redis Cluster: SCAN walks every primary
    revoked_token = apps.get_model("accounts", "RevokedToken")
    now = datetime.now(UTC)
    rows = []
    for key in client.scan_iter(match=OLD_PREFIX + "*", count=1000):
        ttl = client.ttl(key)
        if ttl > 0:
            rows.append(revoked_token(token_id=key[len(OLD_PREFIX) :], expires_at=now + timedelta(seconds=ttl)))
    revoked_token.objects.using(schema_editor.connection.alias).bulk_create(rows, ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [
        migrations.CreateModel(
            name="RevokedToken",
            fields=[
                ("token_id", models.CharField(max_length=64, primary_key=True, serialize=False)),
                ("expires_at", models.DateTimeField(db_index=True)),
            ],
            options={"db_table": "revoked_tokens"},
        ),
        migrations.RunPython(copy_from_redis, migrations.RunPython.noop),
    ]
