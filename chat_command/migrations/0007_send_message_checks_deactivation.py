"""chat_send_message() also refuses a token whose customer was deactivated, in the same statement.

The overload of migration 0006 becomes one that takes the token's issue time as well. It
stores nothing and answers one row with `session_ended` true when logout revoked the token,
or its customer is inactive or was deactivated after the token was issued (customers.
tokens_not_before); otherwise it is migration 0004's function (no row for a non-participant).
A NULL token id (internal callers with no session) skips the check. The rule is the one
accounts.tokens.ENDED_SQL states; accounts/tests/test_deactivation.py holds the two together.
"""

from importlib import import_module

from django.db import migrations

from chat_command.migrations._postgresql import on_postgresql

CREATE = """
CREATE OR REPLACE FUNCTION chat_send_message(
    p_room_id bigint, p_sender_id bigint, p_content text, p_sent_at timestamptz,
    p_client_message_id text, p_event_id uuid, p_topic text, p_key text, p_type text,
    p_version smallint, p_payload jsonb, p_occurred_at timestamptz, p_request_id text,
    p_token_id text, p_issued_at bigint
) RETURNS TABLE (message_id bigint, session_ended boolean) AS $$
BEGIN
    IF p_token_id IS NOT NULL AND (
        EXISTS (SELECT 1 FROM revoked_tokens t WHERE t.token_id = p_token_id)
        OR EXISTS (SELECT 1 FROM customers c WHERE c.customer_id = p_sender_id
                   AND (NOT c.is_active OR c.tokens_not_before > p_issued_at))
    ) THEN
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
    bigint, bigint, text, timestamptz, text, uuid, text, text, text, smallint, jsonb, timestamptz, text, text, bigint);
"""

_0006 = import_module("chat_command.migrations.0006_send_message_checks_revocation")


class Migration(migrations.Migration):
    dependencies = [
        ("chat_command", "0006_send_message_checks_revocation"),
        ("accounts", "0003_customer_tokens_not_before"),
    ]
    operations = [on_postgresql(_0006.DROP, _0006.CREATE), on_postgresql(CREATE, DROP)]
