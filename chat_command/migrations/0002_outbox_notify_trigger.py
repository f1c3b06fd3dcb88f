"""NOTIFY listening relays whenever outbox rows are inserted; delivered only at commit."""

from django.db import migrations

from chat_command.migrations._postgresql import on_postgresql

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


class Migration(migrations.Migration):
    dependencies = [("chat_command", "0001_initial")]
    operations = [on_postgresql(CREATE, DROP)]
