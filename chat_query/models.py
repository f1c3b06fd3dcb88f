"""The read side's tables in PostgreSQL: the search index (the rest of the read model is in MongoDB)."""

from __future__ import annotations

from django.db import models


class SearchEntry(models.Model):
    """A message as search finds it, written by the projector in the state of its highest revision.

    On PostgreSQL a generated tsvector column over `folded`, with a GIN index, is added by
    migration 0001 (see chat_query.search).
    """

    message_id = models.BigIntegerField(primary_key=True)
    room_id = models.BigIntegerField()
    revision = models.PositiveIntegerField()
    # The text as search compares it: lower case, accents and tone marks folded (chat_query.search.fold).
    folded = models.TextField()
    # The message as clients see it, at `revision`.
    message = models.JSONField()

    class Meta:
        db_table = "search_messages"
        indexes = [models.Index(fields=["room_id", "-message_id"], name="search_room_message_idx")]

    def __str__(self) -> str:
        return f"search entry of message {self.message_id}"
