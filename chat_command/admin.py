"""The operator's view of the write side: rooms and their people, messages, and the outbox.

What the admin changes goes through the same commands as the API, with their events, so the
read model, the live clients and any later rebuild learn of it; what has no command is
read-only here. A message's deletion is the only such change so far (rooms are renamed and
their people changed by commands still to come).
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.db.models import Count, Max, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from chat_command.models import Message, OutboxEvent, Room, RoomParticipant
from chat_command.services import do_delete_message


class ReadOnly:
    """No adding, changing or deleting: what has no command here."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ParticipantInline(ReadOnly, admin.TabularInline):
    model = RoomParticipant
    extra = 0
    fields = ("customer", "full_name", "position", "joined_at", "last_read_message_id")
    readonly_fields = ("full_name",)
    raw_id_fields = ("customer",)
    ordering = ("position",)

    @admin.display(description="name")
    def full_name(self, participant: RoomParticipant) -> str:
        return participant.customer.full_name


@admin.register(Room)
class RoomAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("room_id", "room_name", "created_by", "participant_count", "message_count", "last_message_at")
    search_fields = ("=room_id", "room_name", "participants__customer__username", "participants__customer__full_name")
    raw_id_fields = ("created_by",)
    list_select_related = ("created_by",)
    date_hierarchy = "created_at"
    ordering = ("-room_id",)
    inlines = [ParticipantInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Room]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                participant_total=Count("participants", distinct=True),
                message_total=Count("messages", distinct=True),
                last_sent=Max("messages__sent_at"),
            )
        )

    @admin.display(description="participants", ordering="participant_total")
    def participant_count(self, room: Room) -> int:
        return room.participant_total  # type: ignore[attr-defined]

    @admin.display(description="messages", ordering="message_total")
    def message_count(self, room: Room) -> int:
        return room.message_total  # type: ignore[attr-defined]

    @admin.display(description="last message", ordering="last_sent")
    def last_message_at(self, room: Room) -> object:
        return room.last_sent  # type: ignore[attr-defined]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("message_id", "room", "sender", "sent_at", "preview")
    list_filter = ("sent_at",)
    # A number finds a room or a sender by id; words find room names, senders and content.
    search_fields = (
        "=room__room_id",
        "=sender__customer_id",
        "room__room_name",
        "sender__username",
        "sender__full_name",
        "content",
    )
    search_help_text = "A room id or customer id, or words from a room name, a sender's name or the content."
    raw_id_fields = ("room", "sender")
    list_select_related = ("room", "sender")
    date_hierarchy = "sent_at"
    ordering = ("-message_id",)

    @admin.display(description="content")
    def preview(self, message: Message) -> str:
        return message.content if len(message.content) <= 80 else message.content[:79] + "…"

    # Only its sender edits a message, and messages are sent through the API.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    # Deleting leaves the tombstone the sender's own deletion leaves, and tells everyone.
    def delete_model(self, request: HttpRequest, obj: Message) -> None:
        do_delete_message(obj.sender_id, obj.message_id)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        for sender_id, message_id in queryset.values_list("sender_id", "message_id"):
            do_delete_message(sender_id, message_id)


class PublishedFilter(admin.SimpleListFilter):
    title = "publish state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("pending", "pending"), ("stuck", "pending over a minute"), ("published", "published")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[OutboxEvent]) -> QuerySet[OutboxEvent]:
        if self.value() == "pending":
            return queryset.filter(published_at__isnull=True)
        if self.value() == "stuck":
            return queryset.filter(published_at__isnull=True, occurred_at__lt=timezone.now() - timedelta(minutes=1))
        if self.value() == "published":
            return queryset.filter(published_at__isnull=False)
        return queryset


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    list_display = ("id", "type", "topic", "key", "occurred_at", "published", "delay")
    list_filter = (PublishedFilter, "type", "topic")
    search_fields = ("=event_id", "=key")
    search_help_text = "An event id, or a key (the roomId)."
    date_hierarchy = "occurred_at"
    ordering = ("-id",)
    readonly_fields = [f.name for f in OutboxEvent._meta.fields]

    @admin.display(description="published", boolean=True, ordering="published_at")
    def published(self, event: OutboxEvent) -> bool:
        return event.published_at is not None

    @admin.display(description="waited")
    def delay(self, event: OutboxEvent) -> str:
        """How long the event waited for the broker, or has been waiting so far."""
        end = event.published_at or timezone.now()
        waited = (end - event.occurred_at).total_seconds()
        suffix = "" if event.published_at else " so far"
        return f"{waited * 1000:.0f} ms{suffix}" if waited < 1 else f"{waited:.1f} s{suffix}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    # The outbox is the ordered event log that rebuilds replay: rows are never removed by hand.
    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
