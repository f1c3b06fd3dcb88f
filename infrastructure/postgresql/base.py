"""Django's PostgreSQL backend with a health check that costs no round trip.

Django checks a reused connection at the start of each request with `SELECT 1`, a round trip
that cost the send command a tenth of its time. An idle connection has nothing to read, so
when its socket is readable the server has closed it (a restart, pg_terminate_backend, an
idle timeout) or said something out of turn; either way a new connection is the safe answer.
A server that vanished without closing the socket goes unnoticed here as it did with SELECT 1,
until the query's own error.
"""

from __future__ import annotations

from django.db.backends.postgresql import base
from psycopg.pq import TransactionStatus

from infrastructure.sockets import readable_now


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        conn = self.connection
        if conn is None or conn.closed or conn.broken:
            return False
        if conn.info.transaction_status != TransactionStatus.IDLE:
            return bool(super().is_usable())  # mid-transaction: only a query can tell
        return not readable_now(conn.fileno())
