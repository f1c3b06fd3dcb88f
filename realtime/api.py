"""The realtime app's Python API for other apps."""

from __future__ import annotations

from realtime.hub import push_from_sync, sessions_group


def end_sessions_of_token(customer_id: int, token_id: str) -> None:
    """Close every open STOMP session authenticated by this token, on every web process."""
    if token_id:
        push_from_sync(sessions_group(customer_id), {"kind": "end", "tokenId": token_id})


def end_sessions_of_customer(customer_id: int, reason: str) -> None:
    """Close every open STOMP session of this customer, whatever token it holds, on every web process."""
    push_from_sync(sessions_group(customer_id), {"kind": "end", "tokenId": None, "reason": reason})


def on_token_revoked(sender: object, customer_id: int, token_id: str, **kwargs: object) -> None:
    end_sessions_of_token(customer_id, token_id)


def on_customer_deactivated(sender: object, customer_id: int, reason: str, **kwargs: object) -> None:
    end_sessions_of_customer(customer_id, reason)
