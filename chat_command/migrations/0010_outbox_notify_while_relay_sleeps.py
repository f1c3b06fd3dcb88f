"""Outbox rows notify the relay only while it sleeps: a busy relay looks at the outbox itself.

PostgreSQL commits notifying transactions one at a time, under one lock held through their WAL
flush, so every send waited for the sends before it to reach the disk. The active relay holds
the advisory lock SLEEP_LOCK_KEY (chat_command.relay) while it sleeps; a transaction that can
take it shared knows the relay is busy, skips the NOTIFY, and holds it until it ends, so a relay
falling asleep waits for it and then sees its rows.
"""

from django.db import migrations

from chat_command.migrations._postgresql import on_postgresql

SLEEP_LOCK_KEY = 0x0C4A7_05EE  # as chat_command.relay.SLEEP_LOCK_KEY (tested)

CREATE = f"""
CREATE OR REPLACE FUNCTION chat_outbox_notify() RETURNS trigger AS $$
BEGIN
    IF NOT pg_try_advisory_xact_lock_shared({SLEEP_LOCK_KEY}) THEN
        PERFORM pg_notify('chat_outbox', '');
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""

# Back to notifying on every commit, as migration 0002 made it.
DROP = """
CREATE OR REPLACE FUNCTION chat_outbox_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('chat_outbox', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""


class Migration(migrations.Migration):
    dependencies = [("chat_command", "0009_room_membership_and_unread_counts")]
    operations = [on_postgresql(CREATE, DROP)]
