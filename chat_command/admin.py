"""The operator's view of the write side: rooms and their people, messages, and the outbox.

What the admin changes goes through the same commands as the API, with their events, so the
read model, the live clients and any later rebuild learn of it: rooms are created, renamed and
their people added and removed by the room commands, messages deleted by the delete command.
What has no command is read-only here (a message's text, the outbox), and nothing is deleted
directly: not a room, not a participant row, not an event.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import ForeignKeyRawIdWidget, ManyToManyRawIdWidget
from django.db import transaction
from django.db.models import Count, Max, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from accounts.models import Customer
from chat_command.events import SYSTEM
from chat_command.models import Message, OutboxEvent, Room, RoomParticipant
from chat_command.services import (
    check_new_members,
    check_new_room,
    check_room_name,
    do_add_participants,
    do_create_room,
    do_delete_message,
    do_remove_participant,
    do_rename_room,
)
from infrastructure.http.errors import ApplicationError, BadRequest

# --- Rooms and their people ------------------------------------------------------------------

ACTING_HELP = (
    "Each change runs the command the API runs: it records its event and a system message in the "
    "room, so the room list, the history and the live clients follow. The admin acts in the name "
    "of the room's creator while they are in the room, otherwise of its longest-standing member; "
    "someone removed after the creator has gone is recorded as having left. If one change is "
    "refused, none is made."
)
CREATING_HELP = (
    "The room is created as POST /command/room creates it, with its event, so it reaches the room "
    "lists of the people in it: the participants in the order given, then the creator."
)
# The raw-id widgets' lookup of customers (the magnifier next to the field).
CUSTOMERS = Room._meta.get_field("created_by").remote_field


def acting_member(room: Room) -> int | None:
    """Whom the admin's changes to the room are made in the name of; None once no one is in it."""
    member_ids = list(
        RoomParticipant.objects.filter(room=room).order_by("position").values_list("customer_id", flat=True)
    )
    if room.created_by_id in member_ids:
        return room.created_by_id
    return member_ids[0] if member_ids else None


def _actor(room: Room) -> int:
    actor = acting_member(room)
    if actor is None:
        raise BadRequest(f"Room {room.room_id} has no members left: no one remains to change it.", code="no_members")
    return actor


def rename(room: Room, name: str) -> None:
    if name != room.room_name:
        do_rename_room(_actor(room), room.room_id, check_room_name({"roomName": name}))


def add_people(room: Room, customer_ids: list[int]) -> None:
    if customer_ids:
        do_add_participants(_actor(room), room.room_id, check_new_members({"customerIds": customer_ids}))


def remove_people(room: Room, customer_ids: list[int]) -> None:
    creator = room.created_by_id
    creator_in = RoomParticipant.objects.filter(room=room, customer_id=creator).exists()
    # The creator last: while they are in the room, the others are removed in their name.
    for customer_id in sorted(customer_ids, key=lambda i: i == creator):
        do_remove_participant(creator if creator_in else customer_id, room.room_id, customer_id)


class CustomerIdsField(forms.Field):
    """Customer ids separated by commas, as the raw-id lookup fills them in."""

    # The widget reads only the relation's model and limits, which a foreign key's has too.
    widget = ManyToManyRawIdWidget(CUSTOMERS, admin.site)  # type: ignore[arg-type]

    def to_python(self, value: Any) -> list[int]:
        parts = value if isinstance(value, list) else str(value or "").split(",")
        try:
            return [int(part) for part in (p.strip() for p in parts) if part]
        except ValueError:
            raise forms.ValidationError("Customer ids are whole numbers separated by commas.") from None


# The room forms run their command at the end of full_clean, not in save_model: the admin gives
# save_model no way to show a refusal, and by then every field has been checked (the room pages
# have no inline formsets, which the admin would check afterwards). The admin's view runs in a
# transaction, so the command's changes and events commit with the page's log entry.


class RoomCreationForm(forms.ModelForm):
    """A new room: do_create_room, as POST /command/room with the creator as the caller."""

    name = forms.CharField(label="Room name", required=False, strip=False)
    creator = forms.ModelChoiceField(
        Customer.objects.filter(is_active=True),
        widget=ForeignKeyRawIdWidget(CUSTOMERS, admin.site),
        error_messages={"invalid_choice": "No active customer has this id."},
    )
    people = CustomerIdsField(label="Participants", required=False, help_text="Besides the creator.")

    class Meta:
        model = Room
        fields: list[str] = []

    def full_clean(self) -> None:
        super().full_clean()
        if not self.is_bound or self.errors:
            return
        creator = self.cleaned_data["creator"].customer_id
        body = {"roomName": self.cleaned_data["name"], "targetCustomerIds": self.cleaned_data["people"]}
        try:
            self.instance = do_create_room(creator, check_new_room(body, creator))
        except ApplicationError as refusal:
            self.add_error(None, refusal.message)


class RoomChangeForm(forms.ModelForm):
    """Rename, add people, remove people: each through its command, all of them or none."""

    name = forms.CharField(label="Room name", required=False, strip=False)
    add = CustomerIdsField(label="Add people", required=False)
    remove = forms.TypedMultipleChoiceField(
        label="Remove people", coerce=int, required=False, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = Room
        fields: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial["name"] = self.instance.room_name
        members = RoomParticipant.objects.filter(room=self.instance).order_by("position").select_related("customer")
        self.fields["remove"].choices = [(p.customer_id, f"{p.customer.full_name} ({p.customer_id})") for p in members]  # type: ignore[attr-defined]

    def full_clean(self) -> None:
        super().full_clean()
        if not self.is_bound or self.errors:
            return
        steps: list[tuple[str, Callable[[Room, Any], None]]] = [
            ("name", rename),
            ("add", add_people),
            ("remove", remove_people),
        ]
        field: str | None = None
        try:
            with transaction.atomic():  # one refusal undoes the changes made before it
                for field, command in steps:
                    command(self.instance, self.cleaned_data[field])
        except ApplicationError as refusal:
            self.add_error(field, refusal.message)
        self.instance.refresh_from_db()


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ("room_id", "room_name", "created_by", "participant_count", "message_count", "last_message_at")
    search_fields = ("=room_id", "room_name", "participants__customer__username", "participants__customer__full_name")
    list_select_related = ("created_by",)
    date_hierarchy = "created_at"
    ordering = ("-room_id",)

    def get_fieldsets(self, request: HttpRequest, obj: Room | None = None) -> Any:
        if obj is None:
            return [(None, {"fields": ("name", "creator", "people"), "description": CREATING_HELP})]
        return [
            (None, {"fields": ("room_id", "room_name", "created_by", "created_at", "revision", "members")}),
            (
                "Change, through the room's commands",
                {"fields": ("acting_as", "name", "add", "remove"), "description": ACTING_HELP},
            ),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Room | None = None) -> Any:
        return ("room_id", "room_name", "created_by", "created_at", "revision", "members", "acting_as") if obj else ()

    def get_form(self, request: HttpRequest, obj: Room | None = None, change: bool = False, **kwargs: Any) -> Any:
        kwargs["form"] = RoomChangeForm if obj is not None else RoomCreationForm
        return super().get_form(request, obj, change=change, **kwargs)

    # The form's command made the change and recorded its event; saving the row too would not.
    def save_model(self, request: HttpRequest, obj: Room, form: Any, change: bool) -> None:
        pass

    # A room stays, even one its last member left: its history and events refer to it.
    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

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

    @admin.display(description="people")
    def members(self, room: Room) -> str:
        rows = RoomParticipant.objects.filter(room=room).order_by("position").select_related("customer")
        cells = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (p.customer_id, p.customer.full_name, p.customer.username, p.joined_at, p.last_read_message_id or "-")
                for p in rows
            ),
        )
        head = "<tr><th>id</th><th>name</th><th>username</th><th>joined</th><th>read up to</th></tr>"
        return format_html("<table>" + head + "{}</table>", cells)

    @admin.display(description="acting as")
    def acting_as(self, room: Room) -> str:
        actor = acting_member(room)
        if actor is None:
            return "no one: the room has no members left"
        return f"{Customer.objects.get(pk=actor).full_name} (customer {actor})"

    @admin.display(description="participants", ordering="participant_total")
    def participant_count(self, room: Room) -> int:
        return room.participant_total  # type: ignore[attr-defined]

    @admin.display(description="messages", ordering="message_total")
    def message_count(self, room: Room) -> int:
        return room.message_total  # type: ignore[attr-defined]

    @admin.display(description="last message", ordering="last_sent")
    def last_message_at(self, room: Room) -> object:
        return room.last_sent  # type: ignore[attr-defined]


# --- Messages and the outbox -----------------------------------------------------------------


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

    # A system message is the room's record of a change of its people or name: it stays.
    def has_delete_permission(self, request: HttpRequest, obj: Message | None = None) -> bool:
        return super().has_delete_permission(request, obj) and (obj is None or obj.kind != SYSTEM)

    # Deleting leaves the tombstone the sender's own deletion leaves, and tells everyone.
    def delete_model(self, request: HttpRequest, obj: Message) -> None:
        do_delete_message(obj.sender_id, obj.message_id)

    # A selection holding a system message is refused whole, by the permission above.
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
