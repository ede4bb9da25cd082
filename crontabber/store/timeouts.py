"""The server's timeouts a connection is opened with, so that statements need not carry them.

Every statement crontabber sends to PostgreSQL must be ended by the server before the
client's deadline: ``lock_timeout`` and ``statement_timeout`` (see
:meth:`crontabber.store.session.Session.server_timeouts`). Sent as ``SET LOCAL`` in
each query string they hold for that statement alone, which is safe behind any
pooler, but they are two statements more for the server with every statement
crontabber sends: the most of a run's statements, and a third of the server's CPU
for a no-op job.

So a connection is opened with the usual values as its own settings (libpq's
``options``: ``-c lock_timeout=... -c statement_timeout=...``), and a statement
whose timeouts are those sends none. What sits between may not pass the options on:

- PostgreSQL takes them, for that connection alone;
- a PgBouncer refuses a connection whose options it does not know ("unsupported
  startup parameter"): the store connects again without them and keeps sending
  ``SET LOCAL``, for the rest of its life;
- a PgBouncer with ``options`` in ``ignore_startup_parameters`` drops them without a
  word. So the settings are read back before a connection's second statement, and
  until they are, every statement carries its timeouts. A connection that serves
  one statement (a crontab run with nothing due) pays nothing for the check.

Statements whose timeouts differ (a retry with less time left, a migration) carry
them as before.
"""

from __future__ import annotations

import logging

from crontabber.record import replace

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from typing import Any

    from crontabber.db.url import DatabaseURL

log = logging.getLogger("crontabber")

# PgBouncer's words for options it does not take: "unsupported startup parameter: options"
# (before 1.20), "unsupported startup parameter in options: lock_timeout", "unsupported
# options startup parameter: parameter too long".
REFUSED = ("unsupported", "startup parameter")


class ConnectionTimeouts:
    """What the current connection was asked to have (``asked``), what it was found to
    have (``confirmed``), and whether asking is refused where this store connects."""

    def __init__(self) -> None:
        self.refused = False
        self.opened(None)

    def opened(self, asked: dict[str, int] | None) -> None:
        """A new connection, opened with ``asked`` as its own timeouts (None: without)."""
        self.asked = asked
        self.confirmed: dict[str, int] | None = None
        self.served = 0  # statements sent on it

    def url(self, url: DatabaseURL, timeouts: dict[str, int] | None) -> DatabaseURL:
        """``url`` with ``timeouts`` among its options (after any it has); ``url`` itself
        when there are none, or when options were refused here before."""
        if timeouts is None or self.refused or url.dialect != "postgresql":
            return url
        ours = (
            f"-c lock_timeout={timeouts['lock_timeout_ms']} "
            f"-c statement_timeout={timeouts['statement_timeout_ms']}"
        )
        given = url.connect_args.get("options", "")
        options = f"{given} {ours}" if given else ours
        return replace(url, connect_args={**url.connect_args, "options": options})

    def refuses(self, exc: BaseException) -> bool:
        """Whether ``exc``, from a connect with options, says they are not taken there; if
        so, they are never asked for again."""
        if not all(words in str(exc) for words in REFUSED):
            return False
        self.refused = True
        log.debug("the connection refused its timeouts as options: sent with each statement")
        return True

    def to_check(self, timeouts: dict[str, int] | None) -> bool:
        """Whether to read the connection's settings back before this statement: its
        second, when it would go without its timeouts if they had taken."""
        return (
            timeouts is not None
            and self.asked is not None
            and self.confirmed is None
            and self.served > 0
            and timeouts == self.asked
        )

    def checked(self, row: Any) -> None:
        """The connection's settings, as read back (``session_timeouts``)."""
        found = {key: int(row[key]) for key in ("lock_timeout_ms", "statement_timeout_ms")}
        if found == self.asked:
            self.confirmed = found
        else:
            log.debug("the connection dropped its timeouts: sent with each statement")
        self.asked = None

    def carried(self, timeouts: dict[str, int] | None) -> bool:
        """Whether a statement with ``timeouts`` must carry them; counts it as sent."""
        self.served += 1
        return timeouts is not None and timeouts != self.confirmed
