"""The state store's reads of ``crontabber_log`` for the status page: they write nothing.

A mixin of :class:`crontabber.store.abc.StateStore`: the public reads are here,
each database's statement behind the abstract methods.
"""

from __future__ import annotations

import abc

from crontabber.store.records import LogCounts, LogEntry, LogPage
from crontabber.store.schema import LOG_COLUMNS

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from typing import Any


class LogViews(abc.ABC):
    """What the status page reads of the log, through the store's connection and retries."""

    def read_log_page(self, app_name: str, *, offset: int = 0, limit: int = 50) -> LogPage:
        """At most ``limit`` of a job's ``crontabber_log`` rows from ``offset``, newest
        first, and how many rows it has, in one statement that writes nothing."""
        params = {"app_name": app_name, "page_offset": offset, "page_size": limit}
        rows = self._retrying(
            f"reading the log of {app_name}", lambda c: self._log_page(c, params), claimed=False
        )
        entries = tuple(
            LogEntry(**{key: row[key] for key in LOG_COLUMNS})
            for row in rows
            if row["id"] is not None
        )
        return LogPage(entries, rows[0]["total"])

    def read_log_counts(self) -> dict[str, LogCounts]:
        """Per app name in ``crontabber_log``: its rows, the failed ones and the newest
        one's duration, in one statement that writes nothing (it reads the whole log)."""
        rows = self._retrying("counting crontabber_log", self._log_counts, claimed=False)
        return {
            row["app_name"]: LogCounts(row["runs"], row["failures"] or 0, row["last_duration"])
            for row in rows
        }

    @abc.abstractmethod
    def _log_page(self, connection: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
        """The ``log_page`` rows, decoded (``duration`` a timedelta, ``superseded`` a bool)."""

    @abc.abstractmethod
    def _log_counts(self, connection: Any) -> list[dict[str, Any]]:
        """The ``log_counts`` rows, decoded (``last_duration`` a timedelta)."""
