"""Transient database trouble, recognised by driver class and error code, and retried."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa

log = logging.getLogger("crontabber")

T = TypeVar("T")

# Worth another try on PostgreSQL beyond a lost connection: the transaction lost
# a serialization or deadlock check and did nothing.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


def is_transient(exc: BaseException) -> bool:
    """A lost connection, a restarting server, a serialization failure, a busy SQLite file."""
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    if isinstance(orig, sqlite3.OperationalError):
        return getattr(orig, "sqlite_errorcode", None) in (
            sqlite3.SQLITE_BUSY,
            sqlite3.SQLITE_LOCKED,
        )
    from .resources import is_transient_postgres_error

    return is_transient_postgres_error(orig) or getattr(orig, "pgcode", None) in RETRYABLE_SQLSTATES


def retrying(
    what: str,
    operation: Callable[[int], T],
    *,
    retry_for: dt.timedelta,
    first_delay: float = 0.5,
    max_delay: float = 10.0,
) -> T:
    """``operation(attempt)`` until it succeeds, retrying transient errors for ``retry_for``.

    The delay doubles from ``first_delay`` up to ``max_delay``. The last error is
    raised when the time is up; other errors are raised at once.
    """
    deadline = time.monotonic() + retry_for.total_seconds()
    delay = first_delay
    attempt = 1
    while True:
        try:
            return operation(attempt)
        except sa.exc.DBAPIError as exc:
            if not is_transient(exc) or time.monotonic() + delay > deadline:
                raise
            log.warning("%s failed (%s); retrying in %.1fs", what, type(exc.orig).__name__, delay)
        time.sleep(delay)
        delay = min(delay * 2, max_delay)
        attempt += 1
