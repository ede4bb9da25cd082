"""The one retry policy: which database errors are worth another try, and how long to wait.

Every loop that retries database work takes a :class:`RetryPolicy` and asks it
for the pauses of one operation (:meth:`RetryPolicy.pauses`): the state store
through a restarting server, the jobs' transaction executors through a lost
connection, the daemon through an outage, the status page for one more read.
Each loop says only what it does between attempts (reconnect, log, check for a
stop); when to give up is the policy's.

Errors are judged by driver class and SQLSTATE, never by message text:

- :func:`is_lost_connection`: PostgreSQL could not be reached, or the
  connection went away (class 08, a server shutting down or starting);
- :func:`is_transient`: that, or a serialization failure or deadlock (the
  transaction did nothing), or a busy SQLite file;
- :func:`lock_timed_out`: a ``lock_timeout`` that ran out, told apart from a
  ``NOWAIT`` lock that was not available (the same SQLSTATE).

The drivers are looked up in ``sys.modules``, never imported here: a tick
loads only the one it uses.
"""

from __future__ import annotations

import sys
import time

from crontabber.record import field, record

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from collections.abc import Callable

LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of a lost FOR UPDATE NOWAIT, and of a lock_timeout
QUERY_CANCELED = "57014"  # SQLSTATE of a statement_timeout, or of a cancel request
UNDEFINED_TABLE = "42P01"
CONNECTION_EXCEPTION_CLASS = "08"
SHUTDOWN_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})  # admin/crash shutdown, starting up
# The transaction lost a serialization or deadlock check and did nothing.
SERIALIZATION_SQLSTATES = frozenset({"40001", "40P01"})


def sqlstate(exc: BaseException) -> str | None:
    """A PostgreSQL error's SQLSTATE (None for anything else)."""
    return getattr(exc, "pgcode", None)


def lock_timed_out(exc: BaseException) -> bool:
    """Whether ``exc`` is a ``lock_timeout`` that ran out: SQLSTATE 55P03 raised by the
    server's interrupt handler (``ProcessInterrupts``), not where a ``NOWAIT`` lock was
    asked for (55P03 too: a claim relies on that one). The server names the C function
    that raised an error, untranslated; only when it does not is the message read."""
    if sqlstate(exc) != LOCK_NOT_AVAILABLE:
        return False
    function = getattr(getattr(exc, "diag", None), "source_function", None)
    if function:
        return function == "ProcessInterrupts"
    return "lock timeout" in str(exc)


def is_lost_connection(exc: BaseException) -> bool:
    """A lost or refused PostgreSQL connection, judged by driver class and SQLSTATE only.

    ``InterfaceError`` (the connection is already closed) and an
    ``OperationalError`` without a SQLSTATE (libpq could not reach the server, or
    the server went away) are lost connections, as is any error whose SQLSTATE is
    in class 08 or is 57P01, 57P02 or 57P03.
    """
    psycopg2 = sys.modules.get("psycopg2")
    if psycopg2 is None:
        return False
    if isinstance(exc, psycopg2.InterfaceError):
        return True
    if not isinstance(exc, psycopg2.Error):
        return False
    code = exc.pgcode
    if code is None:
        return isinstance(exc, psycopg2.OperationalError)
    return code.startswith(CONNECTION_EXCEPTION_CLASS) or code in SHUTDOWN_SQLSTATES


SQLITE_BUSY, SQLITE_LOCKED = 5, 6  # SQLite's primary result codes (sqlite3 has them from 3.11)


def is_transient(exc: BaseException) -> bool:
    """A lost connection, a restarting server, a serialization failure, a busy SQLite file."""
    if sqlite_busy(exc):
        return True
    return is_lost_connection(exc) or sqlstate(exc) in SERIALIZATION_SQLSTATES


def sqlite_busy(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite's "busy" or "locked" (another connection holds the lock)."""
    return sqlite_error_is(
        exc,
        "OperationalError",
        (SQLITE_BUSY, SQLITE_LOCKED),
        ("database is locked", "database table is locked"),
    )


def sqlite_error_is(
    exc: BaseException, kind: str, codes: tuple[int, ...], words: tuple[str, ...]
) -> bool:
    """Whether ``exc`` is ``sqlite3.<kind>`` with one of the primary result ``codes``.

    Python 3.11 gives the error's code (perhaps an extended one, whose low byte is
    the primary code); 3.10 gives none, and only its message (``words``) says so.
    """
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is None or not isinstance(exc, getattr(sqlite3, kind)):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return any(word in str(exc) for word in words)
    return code & 0xFF in codes


def driver_errors() -> tuple[type[BaseException], ...]:
    """The drivers' error classes that are loaded (a tick loads one driver)."""
    errors: list[type[BaseException]] = []
    if "sqlite3" in sys.modules:
        errors.append(sys.modules["sqlite3"].Error)
    if "psycopg2" in sys.modules:
        errors.append(sys.modules["psycopg2"].Error)
    return tuple(errors)


def describe_error(exc: BaseException) -> str:
    """The first line of a database error, without SQL or parameters."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__


@record
class RetryPolicy:
    """How one operation is retried: the pauses between attempts and when to give up.

    The pauses are ``delays`` in order when given (then, with ``repeat_last``, the
    last of them for ever); otherwise ``first_delay``, multiplied by ``factor``
    after each retry, never more than ``max_delay``. The policy gives up after
    ``retries`` retries (None: no such limit), and before a pause that would end
    more than ``within`` seconds after the first attempt (None: no such limit).
    ``transient`` says which errors are worth a retry at all.
    """

    first_delay: float = 0.5
    max_delay: float = 10.0
    factor: float = 2.0
    retries: int | None = None
    within: float | None = None
    delays: tuple[float, ...] = ()
    repeat_last: bool = False
    transient: Callable[[BaseException], bool] = field(default=is_transient, repr=False)

    def pauses(self, clock: Callable[[], float] = time.monotonic) -> Pauses:
        """The pauses of one operation, counted from now."""
        return Pauses(self, clock)


class Pauses:
    """The pauses of one operation under a :class:`RetryPolicy`, one per failed attempt."""

    def __init__(self, policy: RetryPolicy, clock: Callable[[], float]) -> None:
        self.policy = policy
        self.clock = clock
        self.deadline = None if policy.within is None else clock() + policy.within
        self.retries = 0  # taken so far
        self._delay = policy.first_delay

    def remaining(self) -> float | None:
        """Seconds left before ``within`` runs out (None: no such limit)."""
        return None if self.deadline is None else self.deadline - self.clock()

    def next(self) -> float | None:
        """The pause before the next attempt, or None: give up."""
        policy = self.policy
        if policy.retries is not None and self.retries >= policy.retries:
            return None
        if policy.delays:
            if self.retries < len(policy.delays):
                pause = policy.delays[self.retries]
            elif policy.repeat_last:
                pause = policy.delays[-1]
            else:
                return None
        else:
            pause = min(self._delay, policy.max_delay)
        if self.deadline is not None and self.clock() + pause > self.deadline:
            return None
        self.retries += 1
        self._delay = min(self._delay * policy.factor, policy.max_delay)
        return pause
