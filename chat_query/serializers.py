"""The /query endpoints' answers, declared once for the OpenAPI schema (the selectors build the
JSON; these describe it)."""

from __future__ import annotations

from rest_framework import serializers

from infrastructure.http.answers import envelope


class LastMessage(serializers.Serializer):
    """The room's latest message, in short."""

    messageId = serializers.IntegerField()
    senderId = serializers.IntegerField()
    content = serializers.CharField()
    sentAt = serializers.DateTimeField()
    type = serializers.ChoiceField(choices=["user", "system"], help_text="system: the room's own note of a change.")


class ChatRoomView(serializers.Serializer):
    """A room as the caller's room list shows it."""

    roomId = serializers.IntegerField()
    roomName = serializers.CharField()
    participantIds = serializers.ListField(child=serializers.IntegerField())
    unreadStatus = serializers.DictField(
        child=serializers.BooleanField(), help_text="Whether each participant (by id, as a string) has unread messages."
    )
    unreadCount = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Each participant's (by id, as a string) messages after their read position: the highest of"
        " their read marker, their own newest message and the system message that added them. Up to 999.",
    )
    lastMessage = LastMessage(allow_null=True)
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()
    createdBy = serializers.IntegerField(allow_null=True, help_text="The room's creator, who may remove people.")


class SystemFacts(serializers.Serializer):
    """What a system message records: who did what to whom, and the room's name after it."""

    action = serializers.ChoiceField(choices=["added", "removed", "left", "renamed"])
    actorId = serializers.IntegerField()
    customerIds = serializers.ListField(child=serializers.IntegerField(), help_text="[] for a rename.")
    roomName = serializers.CharField()


class Reactions(serializers.Serializer):
    """One kind of reaction to a message and who gave it, in order."""

    emoji = serializers.CharField(help_text="One emoji or a :short_name:.")
    customerIds = serializers.ListField(child=serializers.IntegerField())


class MessageJson(serializers.Serializer):
    """A message of a room, as it now is."""

    messageId = serializers.IntegerField()
    roomId = serializers.IntegerField()
    senderId = serializers.IntegerField()
    senderFullName = serializers.CharField()
    content = serializers.CharField(help_text="Empty once the message is deleted.")
    sentAt = serializers.DateTimeField()
    editedAt = serializers.DateTimeField(allow_null=True, help_text="When the text last changed; null if never.")
    deleted = serializers.BooleanField()
    reactions = Reactions(many=True, help_text="Ordered by first use.")
    type = serializers.ChoiceField(
        choices=["user", "system"], help_text="system: the room's own note of who added, removed, left or renamed."
    )
    system = SystemFacts(allow_null=True, help_text="A system message's facts; null for a user's message.")

    class Meta:
        ref_name = "Message"


class FoundMessage(MessageJson):
    """A message that matches a search, with its room's name."""

    roomName = serializers.CharField()

    class Meta:
        ref_name = "FoundMessage"


class ReadMarkerJson(serializers.Serializer):
    """How far a participant has read the room."""

    id = serializers.CharField(allow_null=True, help_text="The read store's id; null until it has the marker.")
    roomId = serializers.IntegerField()
    customerId = serializers.IntegerField()
    lastReadMessageId = serializers.IntegerField()

    class Meta:
        ref_name = "ReadMarker"


RoomsAnswer = envelope("RoomsAnswer", ChatRoomView(many=True), "The caller's rooms, latest activity first.")


MessagesAnswer = envelope(
    "MessagesAnswer",
    MessageJson(many=True, help_text="Up to 20 messages, newest first."),
    "A page of the room's messages.",
)


ReadMarkersAnswer = envelope("ReadMarkersAnswer", ReadMarkerJson(many=True), "Every participant's read marker.")


SearchAnswer = envelope(
    "SearchAnswer",
    FoundMessage(many=True, help_text="Up to 20 messages, newest first."),
    "Messages of the caller's rooms that hold every word of q (the last as a prefix).",
)
