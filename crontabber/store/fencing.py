"""What a running job knows of its claim, and how it guards its own writes with it.

A job sees its claim as ``self.claim``, a :class:`JobClaim`: the app name, the
claim's token, its fence number (one higher for every claim of that job), the
scheduled time the run is for, and the host. Two ways to keep a holder whose
lease was lost (see :class:`~crontabber.errors.LeaseLost`) from writing over its
successor's work:

- Data in the state database: ``self.claim.guard(connection)`` in the job's
  own transaction, before its writes. On PostgreSQL it locks the job's row
  ``FOR KEY SHARE`` while the claim's token still matches, so a takeover
  (``FOR UPDATE NOWAIT``) cannot complete until that transaction ends: a
  guarded write commits only while the claim is held. When the token no longer
  matches it raises ``LeaseLost``. On SQLite it checks the token; the job's
  write transaction keeps a takeover out by itself.
- Data elsewhere: pass ``self.claim.fence`` along with each write, and have the
  other system refuse a fence lower than the highest it has seen.
"""

from __future__ import annotations

import datetime as dt
import sys

from crontabber.errors import LeaseLost
from crontabber.record import record
from crontabber.store.queries import queries

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from typing import Any


@record
class JobClaim:
    """The claim a job runs under (``self.claim``)."""

    app_name: str
    token: str
    fence: int
    scheduled_for: dt.datetime  # the next run this run is for (now, for a first or forced run)
    host: str

    def guard(self, connection: Any) -> int:
        """Hold the claim for the rest of ``connection``'s transaction (PostgreSQL), or
        check it (SQLite); the fence number. Raises LeaseLost when it is no longer held.

        ``connection`` is a DB-API connection to the state database, not in
        autocommit: the guard lasts as long as its transaction.
        """
        sqlite3 = sys.modules.get("sqlite3")
        dialect = (
            "sqlite"
            if sqlite3 is not None and isinstance(connection, sqlite3.Connection)
            else "postgresql"
        )
        cursor = connection.cursor()
        try:
            cursor.execute(
                queries(dialect)["guard"], {"app_name": self.app_name, "token": self.token}
            )
            row = cursor.fetchone()
        finally:
            cursor.close()
        if row is None:
            raise LeaseLost.of(self.app_name, "the claim is no longer held")
        return int(row[0])
