"""How a tick shares the due jobs with other hosts on PostgreSQL: claim the next free one.

Every host that runs at the same moment used to walk the due jobs in the same
order and try to lock each row with ``NOWAIT``, so most attempts failed
against each other. Here a tick hands the store the jobs it may run now (due,
dependencies met, not held) and the store claims the first of them that no
other process is claiming (``FOR UPDATE SKIP LOCKED``, see ``claim_next`` in
``store/sql/postgresql.sql``): hosts starting together take different jobs,
and none waits on or fails against another's row. After each run the tick
looks again, so a job whose dependency has just succeeded in this tick is
claimed in the same tick, as before; a dependent is never a candidate before
what it depends on has succeeded.

A job whose row shows a claim (live, or abandoned and to be recovered) goes
through the one-job claim (``StateStore.claim``), as do ``--job`` and
``--force`` and every tick on SQLite.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging

from crontabber.run.reports import JobReport, Result, unmet_dependency
from crontabber.store.records import Holder, JobState

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from crontabber.jobs.spec import JobSpec

log = logging.getLogger("crontabber")

EARLIEST = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
# The most candidates one claim is offered: the oldest due first. When another process
# has every one of them, they are said once and the next ones are offered.
CLAIM_CHUNK = 16


class TakingTurns:
    """The runner's part that claims in turn (the runner is ``self``)."""

    # The runner's, used here:
    store: Any
    lease: Any
    holder: Holder
    interrupts: Any
    _clock: Any
    _consider: Any
    _execute: Any
    _held_elsewhere: Any

    def _run_in_turn(
        self, specs: Sequence[JobSpec], states: dict[str, JobState]
    ) -> list[JobReport]:
        """Run every job of ``specs`` due at the tick's start that this host can claim,
        one at a time, each claimed just before it runs; the reports, in the order of
        ``specs``. Each job is looked at a bounded number of times: a tick costs
        O(J log J) however many jobs other hosts take."""
        reports: dict[str, JobReport] = {}
        now = self._clock()
        due = [
            spec
            for spec in specs
            if spec.is_due(state.next_run if (state := states.get(spec.app_name)) else None, now)
        ]
        due.sort(key=lambda spec: _next_run(states.get(spec.app_name)))  # oldest due first
        queue = collections.deque(due)
        blocked: dict[str, JobSpec] = {}  # held back by a dependency, for now
        while queue:
            self.interrupts.raise_pending()  # a signal between jobs stops the run here
            now = self._clock()
            chunk: list[JobSpec] = []
            changed: set[str] = set()
            while queue and len(chunk) < CLAIM_CHUNK:
                spec = queue.popleft()
                state = states.get(spec.app_name)
                if unmet_dependency(spec, states, now):
                    blocked[spec.app_name] = spec  # looked at again if a dependency changes
                elif state is not None and state.ongoing is not None:
                    # held: the one-job claim tells live from abandoned (and recovers)
                    report = self._consider(spec, states, now)
                    if report is not None:
                        reports[spec.app_name] = report
                    changed.add(spec.app_name)
                else:
                    chunk.append(spec)
            if chunk:
                changed |= self._claim_one_of(chunk, states, reports, queue, now)
            for name, spec in list(blocked.items()):
                if changed.intersection(spec.depends_on):
                    del blocked[name]
                    queue.appendleft(spec)
        now = self._clock()
        for spec in blocked.values():  # held back by a dependency all through the tick
            reason = unmet_dependency(spec, states, now)
            if reason:
                log.info("skipped %s: %s", spec.app_name, reason)
                reports[spec.app_name] = JobReport(spec.app_name, Result.SKIPPED, reason)
        return [reports[spec.app_name] for spec in specs if spec.app_name in reports]

    def _claim_one_of(
        self,
        chunk: list[JobSpec],
        states: dict[str, JobState],
        reports: dict[str, JobReport],
        queue: collections.deque[JobSpec],
        now: dt.datetime,
    ) -> set[str]:
        """Claim the first of ``chunk`` no one else is claiming and run it, the others
        back at the head of the queue; or, when none could be claimed, say why for
        each. The names of the jobs whose state this changed."""
        holder = Holder(self.holder.host, self.holder.pid)
        taken, rows = self.store.claim_next(
            [(spec.app_name, spec.depends_on, states.get(spec.app_name)) for spec in chunk],
            lease=self.lease,
            holder=holder,
        )
        if taken is not None:
            spec = next(spec for spec in chunk if spec.app_name == taken.app_name)
            queue.extendleft(reversed([other for other in chunk if other is not spec]))
            reports[spec.app_name] = self._execute(spec, taken, holder, now, states)
            return {spec.app_name}
        for spec in chunk:  # none could be claimed: say why, once each
            report = _not_claimed(self, spec, states, rows.get(spec.app_name))
            if report is not None:
                reports[spec.app_name] = report
        return {spec.app_name for spec in chunk}


def _not_claimed(
    runner: Any, spec: JobSpec, states: dict[str, JobState], row: JobState | None
) -> JobReport | None:
    """Why a candidate was not claimed, from its row as it stands, said once."""
    seen = states.get(spec.app_name)
    if row is None:  # reset meanwhile: due again at the next tick
        return None
    states[spec.app_name] = row
    if row.ongoing is not None:
        return runner._held_elsewhere(spec, row)
    if row.next_run != (seen.next_run if seen is not None else None):
        log.info("skipped %s: another process has just run it", spec.app_name)
        return None
    log.info("skipped %s: another process is claiming it right now", spec.app_name)
    return JobReport(spec.app_name, Result.LOCKED, "lost the claim to another process")


def _next_run(state: JobState | None) -> dt.datetime:
    """The oldest due first; a job that never ran before any that did."""
    return state.next_run if state is not None and state.next_run is not None else EARLIEST
