"""`manage.py seed_demo`: large demo data written with its events, so projections follow."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.models import Customer
from chat_command.models import Message, OutboxEvent, Room
from chat_query.rebuild import replay
from chat_query.store import ReadStore
from conftest import login

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def seed_demo(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, "--no-progress", stdout=out)
    return out.getvalue()


def test_it_seeds_customers_rooms_and_messages_with_their_events(capsys):
    log_end = OutboxEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    out = seed_demo("--customers=12", "--rooms=3", "--messages=50", "--room-size=4", "--batch=20")
    assert "Demo customers: 12 (12 new)" in out
    assert "Rooms created: 3; messages sent: 50" in out

    rooms = list(Room.objects.filter(room_name__startswith="Demo room").order_by("room_id"))
    assert [room.participants.count() for room in rooms] == [4, 4, 4]
    per_room = [Message.objects.filter(room=room).count() for room in rooms]
    assert per_room == [17, 17, 16]

    events = list(OutboxEvent.objects.filter(id__gt=log_end).order_by("id"))
    assert [e.type for e in events].count("RoomCreated") == 3
    sent = [e.payload["messageId"] for e in events if e.type == "MessageSent"]
    messages = list(Message.objects.filter(room__in=rooms).order_by("message_id").values_list("message_id", flat=True))
    assert sent == messages, "one MessageSent per message, in message order"
    for room in rooms:
        members = set(room.participants.values_list("customer_id", flat=True))
        in_room = [e for e in events if e.type == "MessageSent" and e.payload["roomId"] == room.room_id]
        assert {e.payload["senderId"] for e in in_room} <= members
        seqs = list(Message.objects.filter(room=room).order_by("message_id").values_list("seq", flat=True))
        assert seqs == list(range(1, len(seqs) + 1)), "the messages take their places in the room, in order"
        assert [e.payload["seq"] for e in in_room] == seqs
    assert capsys.readouterr().err == "", "no progress bar when asked for none"


def test_the_projection_follows_the_seeded_events(scratch_mongo_db):
    log_end = OutboxEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    seed_demo("--customers=5", "--rooms=2", "--messages=9", "--room-size=3")
    store = ReadStore(scratch_mongo_db)
    replay(store, after_id=log_end, progress=False)
    for room in Room.objects.filter(room_name__startswith="Demo room"):
        newest = Message.objects.filter(room=room).order_by("-message_id").first()
        view = store.views.find_one({"_id": room.room_id})
        assert view["lastMessage"]["messageId"] == newest.message_id
        assert store.messages.count_documents({"roomId": room.room_id}) == Message.objects.filter(room=room).count()


def test_demo_customers_can_log_in_and_a_second_run_adds_none():
    seed_demo("--customers=4", "--rooms=0", "--password=open-sesame")
    out = seed_demo("--customers=4", "--rooms=1", "--messages=2", "--room-size=2")
    assert "Demo customers: 4 (0 new)" in out
    assert Customer.objects.filter(username__startswith="demo").count() == 4
    login(Client(REMOTE_ADDR="127.0.9.9"), "demo3", "open-sesame")


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--customers=3", "--rooms=1", "--room-size=4"], "--room-size must be between 2 and 3"),
        (["--customers=3", "--rooms=1", "--room-size=1"], "--room-size must be between 2 and 3"),
        (["--rooms=0", "--messages=10"], "--messages needs --rooms"),
        (["--batch=0"], "--batch must be at least 1"),
        (["--customers=-3"], "--customers"),
    ],
)
def test_bad_arguments_are_refused_and_change_nothing(args, complaint):
    before = (Customer.objects.count(), Room.objects.count(), OutboxEvent.objects.count())
    with pytest.raises(CommandError, match=complaint):
        seed_demo(*args)
    assert (Customer.objects.count(), Room.objects.count(), OutboxEvent.objects.count()) == before
