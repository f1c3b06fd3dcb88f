"""Unread counts through the real commands: the projection and the PostgreSQL fallback agree with
a model of the rule after any interleaving of sends, reads, additions and removals."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Customer
from chat_command import selectors as truth
from chat_command.models import Message
from chat_command.services import (
    NewMessage,
    NewRoom,
    ReadMarker,
    do_add_participants,
    do_create_room,
    do_leave_room,
    do_mark_read,
    do_remove_participant,
    do_rename_room,
    do_send_message,
)
from chat_query import projection
from chat_query.store import active_store
from chat_query.tests.helpers import body, project

pytestmark = pytest.mark.integration


@pytest.fixture
def people(seeded, unique):
    """The seeded customers 1-3 and three more."""
    extra = [
        Customer.objects.create_user(
            f"reader-{unique}-{n}", "pw", full_name=f"Reader {n}", email=f"r{n}{unique}@x.test"
        )
        for n in range(3)
    ]
    return [1, 2, 3, *(c.customer_id for c in extra)]


class Model:
    """Where each member has read to, and the room's messages: the rule as users are told it."""

    def __init__(self, members):
        self.members, self.read_to, self.seqs = list(members), {}, []

    def sent(self, sender, seq, added=()):
        self.seqs.append(seq)
        for customer in (sender, *added):
            self.read_to[customer] = max(self.read_to.get(customer, 0), seq)

    def counts(self):
        return {str(p): min(999, sum(1 for s in self.seqs if s > self.read_to.get(p, 0))) for p in self.members}


def newest(room_id):
    return Message.objects.filter(room_id=room_id).order_by("-message_id").values_list("message_id", "seq").first()


def act(room, model, people, operation, who, whom):
    """Run one command as the member `who` picks, if it applies; keep the model in step."""
    actor = model.members[who % len(model.members)]
    outsiders = [p for p in people if p not in model.members]
    if operation == "send":
        do_send_message(actor, NewMessage(room.room_id, "hello", None))
    elif operation == "read":
        messages = list(
            Message.objects.filter(room_id=room.room_id).order_by("message_id").values_list("message_id", "seq")
        )
        if not messages:
            return
        message_id, seq = messages[whom % len(messages)]
        do_mark_read(actor, ReadMarker(room.room_id, message_id))
        model.read_to[actor] = max(model.read_to.get(actor, 0), seq)
        return
    elif operation == "add" and outsiders:
        added = outsiders[whom % len(outsiders)]
        do_add_participants(actor, room.room_id, [added])
        model.members.append(added)
        model.sent(actor, newest(room.room_id)[1], added=[added])
        return
    elif operation == "remove" and actor == 1 and len(model.members) > 1:
        removed = [p for p in model.members if p != 1][whom % (len(model.members) - 1)]
        do_remove_participant(actor, room.room_id, removed)
        model.members.remove(removed)
    elif operation == "leave" and len(model.members) > 1:
        do_leave_room(actor, room.room_id)
        model.members.remove(actor)
    elif operation == "rename":
        if not do_rename_room(actor, room.room_id, f"Name {whom}"):
            return
    else:
        return
    model.sent(actor, newest(room.room_id)[1])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["send", "send", "read", "read", "add", "remove", "leave", "rename"]),
            st.integers(0, 5),
            st.integers(0, 9),
        ),
        max_size=12,
    )
)
def test_counts_from_postgresql_and_from_the_projection_agree_with_the_rule(people, steps):
    room = do_create_room(1, NewRoom("Counted", [2, 3]))
    model = Model([2, 3, 1])
    for operation, who, whom in steps:
        act(room, model, people, operation, who, whom)
    [fallback] = truth.room_documents([room.room_id])
    assert projection.view_json(fallback)["unreadCount"] == model.counts()
    assert fallback["participantIds"] == model.members
    project()
    view = active_store().views.find_one({"_id": room.room_id})
    assert view["unreadCount"] == model.counts()
    assert view["unreadStatus"] == {p: n > 0 for p, n in model.counts().items()}
    assert view["participantIds"] == model.members


def test_a_room_not_projected_yet_is_listed_with_its_counts_from_postgresql(user1, seeded):
    room = do_create_room(2, NewRoom("Fresh", [1, 3]))
    for _ in range(3):
        do_send_message(2, NewMessage(room.room_id, "unread by 1", None))
    do_rename_room(3, room.room_id, "Renamed")
    listed = {r["roomId"]: r for r in body(user1.get("/query/rooms"))["data"]}[room.room_id]
    assert listed["roomName"] == "Renamed"
    assert listed["unreadCount"] == {"1": 4, "3": 0, "2": 1}
    assert listed["unreadStatus"] == {"1": True, "3": False, "2": True}
