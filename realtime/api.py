"""The realtime app's Python API for other apps."""

from __future__ import annotations

from realtime.hub import push_from_sync, token_group


def end_sessions_of_token(token_id: str) -> None:
    """Close every open STOMP session authenticated by this token, on every web process."""
    if token_id:
        push_from_sync(token_group(token_id), {"kind": "revoke"})
