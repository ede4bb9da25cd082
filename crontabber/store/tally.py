"""A count of ``crontabber_log`` kept by reading the whole log once, then only what is added.

``/metrics`` says how many runs and failed runs each job has. Counting them afresh
at every scrape costs the database a scan of every row it keeps
(``log_retention_days``, 90 by default): 0.6 s at five million rows, and it grows
with the log. A :class:`LogTally` counts the whole log once, at its first read, and
after that reads only the rows with an id above the highest it has counted, by the
primary key. Its counts only grow, as a counter's should: pruning old rows does not
lower them.

An id is handed out when a row is inserted, not when it commits, so a row can appear
after rows with higher ids. The tally keeps each id missing below its highest as a
*hole* and asks for it again at each read, until it appears or for
:data:`HOLE_SECONDS` (a rolled-back insert leaves a hole for good; the store's
statement and lock timeouts end a transaction long before). At its first read, the
ids missing among the :data:`WINDOW` below the highest are holes. Each read also
looks at the highest id there is: when it is below the tally's (the table was
restored or made anew, or pruning took every row, the newest too), the tally counts
the whole log again.
"""

from __future__ import annotations

import threading
import time

from crontabber.store.records import LogCounts

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable

    from crontabber.store.abc import StateStore
    from crontabber.store.records import LogAdded

HOLE_SECONDS = 600.0  # how long a missing id is waited for
WINDOW = 10_000  # ids below the highest that the first read looks for holes among


class LogTally:
    """Per job: its rows in ``crontabber_log``, the failed ones, the newest's duration."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        window: int = WINDOW,
        hole_seconds: float = HOLE_SECONDS,
    ) -> None:
        self._clock = clock
        self.window = window
        self.hole_seconds = hole_seconds
        self._lock = threading.Lock()
        self._counts: dict[str, LogCounts] = {}
        self._newest: dict[str, tuple[dt.datetime, int]] = {}
        self._top: int | None = None  # the highest id counted; None: count the whole log
        self.holes: dict[int, float] = {}  # id -> when it was found missing

    def read(self, store: StateStore) -> dict[str, LogCounts]:
        """The counts, brought up to date with one statement."""
        with self._lock:
            now = self._clock()
            if self._top is not None:
                self.holes = {i: t for i, t in self.holes.items() if now - t < self.hole_seconds}
                added = store.read_log_added(self._top, self.holes)
                if added and max(row.id for row in added) < self._top:  # a log made anew
                    self._top = None
                else:
                    for row in added:
                        self._count(row, now)
            if self._top is None:
                self._start(store, now)
            return dict(self._counts)

    def _start(self, store: StateStore, now: float) -> None:
        totals = store.read_log_totals(self.window)
        self._counts, self._newest = dict(totals.counts), dict(totals.newest)
        low = max(totals.top - self.window, 0)
        self.holes = {i: now for i in range(low + 1, totals.top) if i not in totals.recent}
        self._top = totals.top

    def _count(self, row: LogAdded, now: float) -> None:
        assert self._top is not None
        if row.id in self.holes:
            del self.holes[row.id]
        elif row.id > self._top:
            self.holes.update((missing, now) for missing in range(self._top + 1, row.id))
            self._top = row.id
        else:
            return  # the highest row, counted already
        counts = self._counts.get(row.app_name) or LogCounts(0, 0, None)
        duration = counts.last_duration
        newest = self._newest.get(row.app_name)
        if newest is None or (row.log_time, row.id) > newest:
            self._newest[row.app_name] = (row.log_time, row.id)
            duration = row.duration
        self._counts[row.app_name] = LogCounts(
            counts.runs + 1, counts.failures + int(row.failed), duration
        )
