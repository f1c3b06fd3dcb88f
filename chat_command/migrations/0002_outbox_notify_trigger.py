"""NOTIFY listening relays whenever outbox rows are inserted; delivered only at commit."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION chat_outbox_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('chat_outbox', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER outbox_events_notify
AFTER INSERT ON outbox_events
FOR EACH STATEMENT EXECUTE FUNCTION chat_outbox_notify();
"""

DROP = """
DROP TRIGGER IF EXISTS outbox_events_notify ON outbox_events;
DROP FUNCTION IF EXISTS chat_outbox_notify();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("chat_command", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
