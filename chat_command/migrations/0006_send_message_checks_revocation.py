"""chat_send_message() also refuses a token that logout revoked, in the same statement.

A new overload takes the caller's token id as well. When revoked_tokens holds it, it stores
nothing and answers one row with `revoked` true; otherwise it is migration 0004's function
(no row for a non-participant). Checking here rather than before the call saves the send
command a round trip and leaves no gap for a logout between the check and the write.
"""

from django.db import migrations

from chat_command.migrations._postgresql import on_postgresql

CREATE = """
CREATE OR REPLACE FUNCTION chat_send_message(
    p_room_id bigint, p_sender_id bigint, p_content text, p_sent_at timestamptz,
    p_client_message_id text, p_event_id uuid, p_topic text, p_key text, p_type text,
    p_version smallint, p_payload jsonb, p_occurred_at timestamptz, p_request_id text,
    p_token_id text
) RETURNS TABLE (message_id bigint, revoked boolean) AS $$
BEGIN
    IF p_token_id <> '' AND EXISTS (SELECT 1 FROM revoked_tokens t WHERE t.token_id = p_token_id) THEN
        RETURN QUERY SELECT NULL::bigint, true;
        RETURN;
    END IF;
    RETURN QUERY SELECT sent.message_id, false FROM chat_send_message(
        p_room_id, p_sender_id, p_content, p_sent_at, p_client_message_id, p_event_id,
        p_topic, p_key, p_type, p_version, p_payload, p_occurred_at, p_request_id) AS sent;
END;
$$ LANGUAGE plpgsql;
"""

DROP = """
DROP FUNCTION IF EXISTS chat_send_message(
    bigint, bigint, text, timestamptz, text, uuid, text, text, text, smallint, jsonb, timestamptz, text, text);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("chat_command", "0005_drop_messages_room_index"),
        ("accounts", "0002_revoked_tokens"),
    ]
    operations = [on_postgresql(CREATE, DROP)]
