"""Drop the index Django made for Message.room: room_message_idx (room_id, message_id DESC)
serves every lookup by room, and each send no longer maintains a fifth index.

Django does not drop a foreign key's index when db_index becomes False, so the drop is explicit
(the index's name is the one Django gave it, the same on PostgreSQL and SQLite).
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("chat_command", "0004_send_message_function")]

    operations = [
        migrations.AlterField(
            model_name="message",
            name="room",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="messages",
                to="chat_command.room",
            ),
        ),
        # Backwards, AlterField itself creates the index again (on both backends).
        migrations.RunSQL("DROP INDEX IF EXISTS messages_room_id_b1776ddb", migrations.RunSQL.noop),
    ]
