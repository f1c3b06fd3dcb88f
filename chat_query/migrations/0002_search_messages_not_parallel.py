from django.db import migrations

from chat_command.migrations._postgresql import on_postgresql

# A search reads a few thousand rows at most (chat_query.search): starting parallel workers for
# it took longer than the read itself (8 ms against 2 ms for a common word, on the 1,000,000-message
# benchmark dataset), and under load the requests already keep every core busy.
NOT_PARALLEL = "ALTER TABLE search_messages SET (parallel_workers = 0);"
PARALLEL = "ALTER TABLE search_messages RESET (parallel_workers);"


class Migration(migrations.Migration):
    dependencies = [("chat_query", "0001_search_messages")]

    operations = [on_postgresql(NOT_PARALLEL, PARALLEL)]
