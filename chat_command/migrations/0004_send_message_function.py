"""chat_send_message(): the whole send command in one statement, so in one round trip.

It does what the Python path in chat_command/services.py does inside a transaction (and
still does on SQLite): lock the room if the sender takes part in it, insert the message,
and insert its MessageSent outbox row, with the two payload fields only the database knows
by then (messageId, senderFullName) merged into the payload it is given. No row comes back
when the sender is not a participant. A statement is atomic, so the message and its event
commit together, or neither does.
"""

from django.db import migrations

from chat_command.migrations._postgresql import on_postgresql

CREATE = """
CREATE OR REPLACE FUNCTION chat_send_message(
    p_room_id bigint, p_sender_id bigint, p_content text, p_sent_at timestamptz,
    p_client_message_id text, p_event_id uuid, p_topic text, p_key text, p_type text,
    p_version smallint, p_payload jsonb, p_occurred_at timestamptz, p_request_id text
) RETURNS TABLE (message_id bigint) AS $$
DECLARE
    sender_name text;
BEGIN
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

DROP = "DROP FUNCTION IF EXISTS chat_send_message(bigint, bigint, text, timestamptz, text, uuid, text, text, text, smallint, jsonb, timestamptz, text);"


class Migration(migrations.Migration):
    dependencies = [("chat_command", "0003_outbox_request_id")]
    operations = [on_postgresql(CREATE, DROP)]
