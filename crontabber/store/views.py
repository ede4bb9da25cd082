"""The state store's reads of ``crontabber_log`` for the status page: they write nothing.

A mixin of :class:`crontabber.store.abc.StateStore`: the public reads are here,
each database's statement behind the abstract methods.
"""

from __future__ import annotations

import abc

from crontabber.store.records import LogAdded, LogCounts, LogEntry, LogPage, LogTotals
from crontabber.store.schema import LOG_COLUMNS

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from collections.abc import Collection
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

    def read_log_totals(self, window: int) -> LogTotals:
        """Every job's rows in ``crontabber_log``, failed rows and newest row, with the
        highest id and the ids present among the ``window`` below it, in one statement
        that writes nothing (it reads the whole log: a tally's start)."""
        rows = self._retrying(
            "counting crontabber_log",
            lambda c: self._log_query(c, "log_totals", {"window": window}),
            claimed=False,
        )
        counted = [row for row in rows if row["app_name"] is not None]
        recent = rows[0]["recent_ids"] if rows else None
        if isinstance(recent, str):  # SQLite: comma-separated
            recent = [int(part) for part in recent.split(",")]
        return LogTotals(
            {
                row["app_name"]: LogCounts(row["runs"], row["failures"] or 0, row["duration"])
                for row in counted
            },
            {row["app_name"]: (row["log_time"], row["id"]) for row in counted},
            rows[0]["top_id"] if rows else 0,
            frozenset(recent or ()),
        )

    def read_log_added(self, after: int, ids: Collection[int] = ()) -> list[LogAdded]:
        """The ``crontabber_log`` rows with an id above ``after`` or among ``ids``, and
        the highest row, by id, found by the primary key (what a tally has not counted)."""
        params = {"after": after, "ids": sorted(ids)}
        rows = self._retrying(
            "reading new crontabber_log rows",
            lambda c: self._log_query(c, "log_added", params),
            claimed=False,
        )
        return [
            LogAdded(
                row["id"], row["app_name"], bool(row["failed"]), row["log_time"], row["duration"]
            )
            for row in rows
        ]

    @abc.abstractmethod
    def _log_query(
        self, connection: Any, name: str, params: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """The rows of statement ``name`` (log_totals, log_added), ``duration`` a timedelta."""

    @abc.abstractmethod
    def _log_page(self, connection: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
        """The ``log_page`` rows, decoded (``duration`` a timedelta, ``superseded`` a bool)."""
