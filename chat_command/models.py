from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Room(models.Model):
    room_id = models.BigAutoField(primary_key=True)
    room_name = models.CharField(max_length=100)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, db_column="created_by", related_name="+"
    )
    created_at = models.DateTimeField()
    # Grows by one with every rename or change of membership: the read model keeps the room's
    # state of the highest revision it has seen, whatever order the events arrive in.
    revision = models.PositiveIntegerField(db_default=0)

    class Meta:
        db_table = "rooms"

    def __str__(self) -> str:
        return f"{self.room_name} ({self.room_id})"


class RoomParticipant(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="participants")
    customer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # Position in the room's participant list: request order of targets, then the creator.
    position = models.PositiveSmallIntegerField()
    joined_at = models.DateTimeField()
    last_read_message_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        db_table = "room_participants"
        constraints = [models.UniqueConstraint(fields=["room", "customer"], name="idx_room_customer")]
        indexes = [models.Index(fields=["customer", "room"], name="participant_customer_idx")]

    def __str__(self) -> str:
        return f"customer {self.customer_id} in room {self.room_id}"


class Message(models.Model):
    message_id = models.BigAutoField(primary_key=True)
    # No index of its own: room_message_idx (room, -message_id) serves every lookup by room,
    # and one index fewer is less work for each send.
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages", db_index=False)
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, db_column="customer_id")
    content = models.TextField()
    sent_at = models.DateTimeField()
    # The sender's idempotency key: a retried send with the same key returns the first message.
    # NULL, not "", means "no key": the partial unique constraint below skips NULLs.
    client_message_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    # Grows by one with every edit, delete or reaction change: the read model keeps the state of
    # the highest revision it has seen, whatever order the events arrive in.
    revision = models.PositiveIntegerField(db_default=0)
    edited_at = models.DateTimeField(null=True, blank=True)
    # A deleted message stays in the history as a tombstone: content "", no reactions.
    deleted_at = models.DateTimeField(null=True, blank=True)
    # The message's place in its room, 1, 2, 3, ...: given under the room's lock, so it follows
    # message_id within a room. Unread counts are differences of these.
    seq = models.PositiveIntegerField(db_default=0)
    # "user", or "system": the room's own note of who added, removed, left or renamed, sent in
    # the name of whoever did it, its facts in `system`.
    kind = models.CharField(max_length=10, db_default="user")
    system = models.JSONField(null=True, blank=True)

    class Meta:
        db_table = "messages"
        constraints = [
            models.UniqueConstraint(
                fields=["sender", "client_message_id"],
                condition=Q(client_message_id__isnull=False),
                name="message_idempotency_key",
            )
        ]
        indexes = [models.Index(fields=["room", "-message_id"], name="room_message_idx")]

    def __str__(self) -> str:
        return f"message {self.message_id} in room {self.room_id}"


class Reaction(models.Model):
    """One customer's reaction to a message: an emoji or a :short_name:."""

    id = models.BigAutoField(primary_key=True)  # the order of first use
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="reactions")
    customer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    emoji = models.CharField(max_length=64)

    class Meta:
        db_table = "message_reactions"
        constraints = [models.UniqueConstraint(fields=["message", "emoji", "customer"], name="one_reaction_each")]

    def __str__(self) -> str:
        return f"{self.emoji} by {self.customer_id} on {self.message_id}"


class OutboxEvent(models.Model):
    """An event recorded in the transaction that caused it; published later by the relay.

    Published rows stay: ordered by id, the table is the event log that rebuilds replay.
    """

    id = models.BigAutoField(primary_key=True)
    event_id = models.UUIDField(unique=True)
    topic = models.CharField(max_length=100)
    key = models.CharField(max_length=100)
    type = models.CharField(max_length=100)
    version = models.PositiveSmallIntegerField()
    payload = models.JSONField()
    occurred_at = models.DateTimeField()
    published_at = models.DateTimeField(null=True, blank=True)
    # The X-Request-ID of the HTTP request that recorded the event; NULL when none did.
    request_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001

    class Meta:
        db_table = "outbox_events"
        indexes = [
            models.Index(fields=["id"], condition=Q(published_at__isnull=True), name="outbox_pending_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.id}"
