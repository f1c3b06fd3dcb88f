from django.contrib import admin

from chat_command.models import Message, OutboxEvent, Room, RoomParticipant


class ParticipantInline(admin.TabularInline):
    model = RoomParticipant
    extra = 0
    fields = ("customer", "position", "joined_at", "last_read_message_id")
    raw_id_fields = ("customer",)


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ("room_id", "room_name", "created_by", "created_at")
    search_fields = ("room_name",)
    raw_id_fields = ("created_by",)
    inlines = [ParticipantInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("message_id", "room", "sender", "sent_at", "content")
    list_filter = ("sent_at",)
    search_fields = ("content", "room__room_name", "sender__username", "sender__full_name")
    raw_id_fields = ("room", "sender")


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    list_display = ("id", "type", "topic", "key", "occurred_at", "published_at")
    list_filter = ("type", ("published_at", admin.EmptyFieldListFilter))
    search_fields = ("event_id", "key")
    readonly_fields = [f.name for f in OutboxEvent._meta.fields]
