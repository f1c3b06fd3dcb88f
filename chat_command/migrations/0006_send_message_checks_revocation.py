"""chat_send_message() also refuses a token that logout revoked, in the same statement.

The caller passes its token's id; when revoked_tokens holds it, the function stores nothing
and answers one row with `revoked` true. Checking here rather than before the call saves the
send command a round trip and leaves no gap for a logout between the check and the write.
"""

from django.db import migrations

from chat_command.migrations._postgresql import on_postgresql

OLD_SIGNATURE = "bigint, bigint, text, timestamptz, text, uuid, text, text, text, smallint, jsonb, timestamptz, text"

CREATE = f"""
DROP FUNCTION IF EXISTS chat_send_message({OLD_SIGNATURE});
CREATE OR REPLACE FUNCTION chat_send_message(
    p_room_id bigint, p_sender_id bigint, p_content text, p_sent_at timestamptz,
    p_client_message_id text, p_event_id uuid, p_topic text, p_key text, p_type text,
    p_version smallint, p_payload jsonb, p_occurred_at timestamptz, p_request_id text,
    p_token_id text
) RETURNS TABLE (message_id bigint, revoked boolean) AS $$
DECLARE
    sender_name text;
BEGIN
    revoked := p_token_id <> '' AND EXISTS (SELECT 1 FROM revoked_tokens t WHERE t.token_id = p_token_id);
    IF revoked THEN
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT c.full_name INTO sender_name FROM room_participants p
      JOIN rooms r ON r.room_id = p.room_id
      JOIN customers c ON c.customer_id = p.customer_id
     WHERE p.room_id = p_room_id AND p.customer_id = p_sender_id
       FOR UPDATE OF r;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    INSERT INTO messages (room_id, customer_id, content, sent_at, client_message_id)
    VALUES (p_room_id, p_sender_id, p_content, p_sent_at, p_client_message_id)
    RETURNING messages.message_id INTO message_id;
    INSERT INTO outbox_events (event_id, topic, key, type, version, payload, occurred_at, request_id)
    VALUES (p_event_id, p_topic, p_key, p_type, p_version,
            p_payload || jsonb_build_object('messageId', message_id, 'senderFullName', sender_name),
            p_occurred_at, p_request_id);
    RETURN NEXT;
END;
$$ LANGUAGE plpgsql;
"""

# Back to migration 0004's function.
DROP = f"""
DROP FUNCTION IF EXISTS chat_send_message({OLD_SIGNATURE}, text);
"""


def restore_0004(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        from importlib import import_module

        schema_editor.execute(import_module("chat_command.migrations.0004_send_message_function").CREATE)


class Migration(migrations.Migration):
    dependencies = [
        ("chat_command", "0005_drop_messages_room_index"),
        ("accounts", "0002_revoked_tokens"),
    ]
    operations = [
        on_postgresql(CREATE, DROP),
        migrations.RunPython(migrations.RunPython.noop, restore_0004),
    ]
