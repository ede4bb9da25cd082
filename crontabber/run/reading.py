"""What a daemon's tick reads: every row now and then, in between only what may be due.

A crontab run reads every job's row once, as it must. A daemon ticks every few
seconds for as long as it runs, and most of its jobs are not due at most ticks:
reading every row every tick costs the database the whole table per tick. So a
daemon (:class:`DueReads`) keeps the rows it read, reads every row at its first
tick and once every :data:`FULL_READ_SECONDS`, and in between asks only for the
rows that may have changed in a way that matters (``read_due_states`` in
``store/sql/postgresql.sql``, by the index on ``next_run``): those due by its
next poll, those that never ran, the jobs others depend on, and the claims it
saw. The runner updates the kept rows with what its claims return, so a row
another host changed is put right at the latest when this host tries to claim
it. What only a full read sees: a row removed (``--reset-job``) or a claim of
a job not due (``--force``) on another host.

A tick within one poll of the last read, of a daemon none of whose jobs depends
on another, reads nothing: the rows due by the next poll were in that read, and
the claim itself says what other hosts changed (a job run elsewhere is a row the
claim finds changed, and returns). Such a tick is a daemon woken for a job
falling due; it claims at once, one statement where a read and a claim were two,
and several hosts woken for the same job pay one statement each. A job made due
sooner by an operator's action is read at once all the same (the action wakes
the daemon, which then reads every row); an abandoned claim is recovered, and a
late or stuck job said, at the next read. A tick once a pause's ``--until`` has
come reads, and so does every tick where a job depends on another, so that the
dependencies it judges are as fresh as the read.

On SQLite every tick reads every row (one file, no network).
"""

from __future__ import annotations

import datetime as dt
import time

from crontabber.store.records import JobState, Snapshot

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from crontabber.jobs.spec import JobSpec
    from crontabber.store.abc import StateStore

FULL_READ_SECONDS = 60.0  # the longest a daemon goes without reading every row


class DueReads:
    """A daemon's reads (see the module docstring); ``ahead``: its poll interval."""

    def __init__(
        self,
        ahead: dt.timedelta,
        *,
        full_every: float = FULL_READ_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ahead = ahead
        self.full_every = full_every
        self._clock = clock
        self._states: dict[str, JobState] | None = None
        self._full_at = 0.0
        self._last: Snapshot | None = None  # the last read, brought up to date
        self._read_at = 0.0  # when it was made

    def read(self, store: StateStore, specs: Sequence[JobSpec], max_age: dt.timedelta) -> Snapshot:
        """The states for a tick: the kept rows, brought up to date. The runner changes
        the returned ``states`` as it claims, which keeps them."""
        read_due = getattr(store, "read_due_snapshot", None)
        clock = self._clock()
        if self._states is None or read_due is None or clock - self._full_at >= self.full_every:
            snapshot = store.read_snapshot(max_age)
            self._states, self._full_at = snapshot.states, clock
            return self._made(snapshot, clock)
        named = {name for spec in specs for name in spec.depends_on}
        last, since = self._last, clock - self._read_at
        if last is not None and not named and since < self.ahead.total_seconds():
            now = last.now + dt.timedelta(seconds=since)
            ended = any(p.until is not None and p.until <= now for p in last.paused.values())
            if not ended:  # a pause that ends by itself is read as ended, on time
                return Snapshot(self._states, now, paused=last.paused, kept=True)
        named.update(name for name, state in self._states.items() if state.ongoing is not None)
        snapshot = read_due(max_age, ahead=self.ahead, app_names=sorted(named))
        self._states.update(snapshot.states)
        return self._made(
            Snapshot(
                self._states,
                snapshot.now,
                snapshot.abandoned,
                snapshot.oldest_log,
                snapshot.paused,
            ),
            clock,
        )

    def _made(self, snapshot: Snapshot, clock: float) -> Snapshot:
        self._last, self._read_at = snapshot, clock
        return snapshot

    def forget(self) -> None:
        """Read every row at the next tick (after an error, an operator's action, or a
        new configuration)."""
        self._states, self._last = None, None
