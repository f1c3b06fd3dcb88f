"""The send command, stated once: its inputs, its steps, the event it records.

SEND_STEPS says what a send does, in order, as SQL over named values (`{room_id}`): the send's
inputs (INPUTS) and what earlier steps found. MESSAGE_SENT says where each field of the event
comes from. Everything else is derived from these:

- `run_steps` runs the steps one statement at a time in the caller's transaction; the caller
  then records `event_of(values)` through the outbox. SQLite (the embedded mode) sends this way.
- `function_sql` generates `chat_send_message()`, the same steps and the outbox row as one
  PL/pgSQL function, which PostgreSQL runs in one round trip (decision record 0006). After every
  `migrate`, `install` makes the installed function the generated one, so changing a rule is a
  change of this module only: no migration, no second copy.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import string
from collections.abc import Mapping
from typing import Any, Literal

from django.db import connection as default_connection
from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from accounts.tokens import Principal, ended_sql
from chat_command import outbox
from chat_command.events import MessageSent
from infrastructure.timeutil import iso, now_ms

FUNCTION = "chat_send_message"

# What the send is given, with PostgreSQL types, in the function's parameter order. A NULL
# token_id (an internal caller with no session) skips the session check.
INPUTS: dict[str, str] = {
    "room_id": "bigint",
    "sender_id": "bigint",
    "content": "text",
    "sent_at": "timestamptz",
    "client_message_id": "text",
    "token_id": "text",
    "issued_at": "bigint",
}


def inputs(
    sender_id: int, room_id: int, content: str, client_message_id: str | None, session: Principal | None
) -> dict[str, Any]:
    """The INPUTS of one send, sent now."""
    return {
        "room_id": room_id,
        "sender_id": sender_id,
        "content": content,
        "sent_at": now_ms(),
        "client_message_id": client_message_id,
        "token_id": session.token_id if session is not None else None,
        "issued_at": session.issued_at if session is not None else None,
    }


# Why a send stored nothing; services turns each into its HTTP answer.
SESSION_ENDED = "session_ended"
NOT_A_PARTICIPANT = "not_a_participant"


# The place of a room's next message: one after its newest (seqs follow message ids within a
# room). Read under the room's lock by every writer of messages: sends and changes of membership.
NEXT_SEQ = "COALESCE((SELECT seq FROM messages WHERE room_id = {room_id} ORDER BY message_id DESC LIMIT 1), 0) + 1"


@dataclasses.dataclass(frozen=True)
class Step:
    """One statement of the send; the first column of its row becomes the value `into`."""

    into: str
    type: str  # the value's PostgreSQL type
    # {name} stands for an input or an earlier step's value; {into} marks where PL/pgSQL's INTO
    # goes (after a SELECT's list, at the end of an INSERT ... RETURNING).
    sql: str
    lock: str = ""  # a row-locking clause, where the database has them (SQLite serialises writers)
    only_if: str | None = None  # skipped (its value NULL) when this input is NULL
    refuse_when: Literal["missing", "true"] | None = None  # no row, or a true value, stops the send
    refusal: str = ""

    def stops(self, row: tuple[Any, ...] | None) -> bool:
        """Whether the row the statement gave (None: none) refuses the send."""
        if self.refuse_when == "missing":
            return row is None
        return self.refuse_when == "true" and bool(row and row[0])


SEND_STEPS = (
    Step(
        into="session_ended",
        type="boolean",
        sql="SELECT " + ended_sql("{token_id}", "{sender_id}", "{issued_at}") + " {into}",
        only_if="token_id",
        refuse_when="true",
        refusal=SESSION_ENDED,
    ),
    # Locking the room serialises its sends and its changes of membership, so message ids,
    # seqs, outbox order and commit order agree within a room. The lock comes first, alone:
    # the statements after it read the room as the change it waited for left it (a removed
    # sender is refused), which a check joined to the locking statement would not.
    Step(
        into="locked_room",
        type="bigint",
        sql="SELECT room_id {into} FROM rooms WHERE room_id = {room_id}",
        lock="FOR UPDATE",
        refuse_when="missing",
        refusal=NOT_A_PARTICIPANT,
    ),
    # The sender's name is read here, for the event.
    Step(
        into="sender_name",
        type="text",
        sql="SELECT c.full_name {into} FROM room_participants p JOIN customers c ON c.customer_id = p.customer_id"
        " WHERE p.room_id = {room_id} AND p.customer_id = {sender_id}",
        refuse_when="missing",
        refusal=NOT_A_PARTICIPANT,
    ),
    Step(into="seq", type="bigint", sql="SELECT " + NEXT_SEQ + " {into}"),
    Step(
        into="message_id",
        type="bigint",
        sql="INSERT INTO messages (room_id, customer_id, content, sent_at, client_message_id, seq)"
        " VALUES ({room_id}, {sender_id}, {content}, {sent_at}, {client_message_id}, {seq})"
        " RETURNING message_id {into}",
    ),
)

# Each field of the event and the input or step value it takes.
MESSAGE_SENT = {
    "roomId": "room_id",
    "messageId": "message_id",
    "senderId": "sender_id",
    "senderFullName": "sender_name",
    "content": "content",
    "sentAt": "sent_at",
    "seq": "seq",
}
# What the send answers: this step's value.
RESULT = "message_id"


# --- Running the steps one at a time -------------------------------------------------------


def run_steps(given: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Run SEND_STEPS in the current transaction; return every value, and the refusal if one stopped it."""
    values = dict(given)
    locks = default_connection.features.has_select_for_update
    with default_connection.cursor() as cursor:
        for step in SEND_STEPS:
            if step.only_if is not None and values[step.only_if] is None:
                values[step.into] = None
                continue
            sql, names = _positional(step, locks)
            cursor.execute(sql, [values[name] for name in names])
            row = cursor.fetchone()
            if step.stops(row):
                return values, step.refusal
            values[step.into] = None if row is None else row[0]
    return values, None


@functools.cache
def _positional(step: Step, locks: bool) -> tuple[str, tuple[str, ...]]:
    """The step's statement with %s for each {name} (and no {into}), and the names in the order they stand."""
    sql = " ".join(filter(None, [step.sql, step.lock if locks else ""]))
    parts = [(literal, name) for literal, name, _, _ in string.Formatter().parse(sql)]
    names = tuple(name for _, name in parts if name is not None and name != "into")
    text = "".join(literal + ("" if name in (None, "into") else "%s") for literal, name in parts)
    return " ".join(text.split()), names


def next_seq(room_id: int) -> int:
    """The seq the room's next message takes; the caller holds the room's lock."""
    with default_connection.cursor() as cursor:
        cursor.execute("SELECT " + NEXT_SEQ.format(room_id="%s"), [room_id])
        row = cursor.fetchone()
    assert row is not None, "a SELECT without FROM returns one row"
    return int(row[0])


def event_of(values: Mapping[str, Any]) -> MessageSent:
    """The event of a send whose steps have all run."""
    return MessageSent(**{field: _json_value(source, values[source]) for field, source in MESSAGE_SENT.items()})


def known_payload(given: Mapping[str, Any]) -> dict[str, Any]:
    """The event's fields that come from the inputs; the function adds the rest."""
    return {field: _json_value(source, given[source]) for field, source in MESSAGE_SENT.items() if source in INPUTS}


def _json_value(name: str, value: Any) -> Any:
    return iso(value) if _types()[name] == "timestamptz" else value


@functools.cache
def _types() -> dict[str, str]:
    return {**INPUTS, **{step.into: step.type for step in SEND_STEPS}}


# --- The same steps as one PL/pgSQL function -----------------------------------------------


def _parameters() -> dict[str, str]:
    """The function's parameters: the inputs, then the outbox row's columns."""
    clash = INPUTS.keys() & outbox.COLUMNS.keys()
    if clash:
        raise RuntimeError(f"send inputs and outbox columns share names: {sorted(clash)}")
    return {**INPUTS, **outbox.COLUMNS}


@functools.cache
def signature() -> str:
    return f"{FUNCTION}({', '.join(_parameters().values())})"


def call_params(given: Mapping[str, Any], row: outbox.Row) -> list[Any]:
    """call_sql's parameters: the inputs, then the event's outbox row."""
    return [*(given[name] for name in INPUTS), *row.columns()]


def call_sql() -> str:
    """The statement that runs one send; its parameters in _parameters' order."""
    casts = ", ".join(f"%s::{type_}" for type_ in _parameters().values())
    return f"SELECT {RESULT}, refusal FROM {FUNCTION}({casts})"


@functools.cache
def function_body() -> str:
    variables = "".join(f"    v_{step.into} {step.type};\n" for step in SEND_STEPS)
    steps = "".join(_plpgsql(step) for step in SEND_STEPS)
    return (
        "\n#variable_conflict use_column\n"
        f"DECLARE\n{variables}"
        f"BEGIN\n{steps}"
        f"    {_outbox_insert()};\n"
        f"    RETURN QUERY SELECT v_{RESULT}, NULL::text;\n"
        "END;\n"
    )


@functools.cache
def function_sql() -> str:
    parameters = ", ".join(f"p_{name} {type_}" for name, type_ in _parameters().items())
    return (
        f"CREATE FUNCTION {FUNCTION}({parameters})\n"
        f"RETURNS TABLE ({RESULT} {_types()[RESULT]}, refusal text) AS $body${function_body()}$body$ LANGUAGE plpgsql"
    )


def _in_plpgsql(step: Step) -> str:
    """The step's statement with each {name} as the function's parameter or variable of that name."""
    names = {name: f"p_{name}" for name in INPUTS} | {s.into: f"v_{s.into}" for s in SEND_STEPS}
    return " ".join(filter(None, [step.sql, step.lock])).format_map({**names, "into": f"INTO v_{step.into}"})


def _plpgsql(step: Step) -> str:
    statement = _in_plpgsql(step)
    lines = [f"{statement};"]
    if step.refuse_when is not None:
        stop = "NOT FOUND" if step.refuse_when == "missing" else f"v_{step.into}"
        lines += [
            f"IF {stop} THEN",
            f"    RETURN QUERY SELECT NULL::{_types()[RESULT]}, '{step.refusal}'::text;",
            "    RETURN;",
            "END IF;",
        ]
    if step.only_if is not None:
        lines = [f"IF p_{step.only_if} IS NOT NULL THEN", *("    " + line for line in lines), "END IF;"]
    return "".join(f"    {line}\n" for line in lines)


def _outbox_insert() -> str:
    """The event's outbox row: the payload the caller built, plus the fields only the steps know."""
    from_steps = [(field, source) for field, source in MESSAGE_SENT.items() if source not in INPUTS]
    for _, source in from_steps:
        if _types()[source] not in ("bigint", "text", "boolean"):
            raise RuntimeError(f"{source} ({_types()[source]}) has no JSON form that matches event_of's")
    merged = ", ".join(f"'{field}', v_{source}" for field, source in from_steps)
    values = [f"p_{name}" for name in outbox.COLUMNS]
    values[list(outbox.COLUMNS).index("payload")] = f"p_payload || jsonb_build_object({merged})"
    return f"INSERT INTO outbox_events ({', '.join(outbox.COLUMNS)}) VALUES ({', '.join(values)})"


# --- Keeping the installed function the generated one --------------------------------------


@functools.cache
def fingerprint() -> str:
    return hashlib.sha256(function_sql().encode()).hexdigest()


def installed(connection: BaseDatabaseWrapper) -> tuple[str, str | None] | None:
    """The body and fingerprint of the installed function of this signature, if there is one."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.prosrc, obj_description(p.oid, 'pg_proc') FROM pg_proc p WHERE p.oid = to_regprocedure(%s)",
            [signature()],
        )
        return cursor.fetchone()


def install(connection: BaseDatabaseWrapper) -> bool:
    """Make the installed function of this signature the generated one; return whether it changed.

    Runs after every `migrate` (and every test flush), so the check is one query. Concurrent
    installers (several containers migrating at once) take turns on an advisory lock. Functions
    of the same name with other parameters are left alone: a process of an earlier version may
    still call one during a rolling upgrade.
    """
    if connection.vendor != "postgresql" or installed(connection) == _current():
        return False
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [FUNCTION])
        if installed(connection) == _current():
            return False
        # Dropped and created in one transaction: callers see the old function or the new one.
        cursor.execute(f"DROP FUNCTION IF EXISTS {signature()}")
        cursor.execute(function_sql())
        cursor.execute(f"COMMENT ON FUNCTION {signature()} IS '{fingerprint()}'")
    return True


def _current() -> tuple[str, str]:
    """What installed() reads when the function is the generated one (both are computed once)."""
    return function_body(), fingerprint()
