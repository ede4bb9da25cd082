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
from crontabber.store.records import Holder, JobState, Outcome

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


class _Turn:
    """One tick's progress through its due jobs."""

    def __init__(self, states: dict[str, JobState], queue: collections.deque[JobSpec]) -> None:
        self.states = states
        self.queue = queue  # not yet offered, oldest due first
        self.blocked: dict[str, JobSpec] = {}  # held back by a dependency, for now
        self.reports: dict[str, JobReport] = {}
        # A claim made with the last outcome, not yet taken up: (chunk, holder, claim).
        self.pending: tuple[list[JobSpec], Holder, Any] | None = None


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
    _paused_report: Any
    _paused: Any
    _turn: _Turn | None = None  # while a tick claims in turn

    def _run_in_turn(
        self, specs: Sequence[JobSpec], states: dict[str, JobState]
    ) -> list[JobReport]:
        """Run every job of ``specs`` due at the tick's start that this host can claim,
        one at a time, each claimed just before it runs; the reports, in the order of
        ``specs``. Each job is looked at a bounded number of times: a tick costs
        O(J log J) however many jobs other hosts take."""
        now = self._clock()
        due = [
            spec
            for spec in specs
            if spec.is_due(state.next_run if (state := states.get(spec.app_name)) else None, now)
        ]
        due.sort(key=lambda spec: _next_run(states.get(spec.app_name)))  # oldest due first
        turn = self._turn = _Turn(states, collections.deque(due))
        try:
            while turn.queue or turn.pending is not None:
                changed = self._next_turn(turn)
                for name, spec in list(turn.blocked.items()):
                    if changed.intersection(spec.depends_on):
                        del turn.blocked[name]
                        turn.queue.appendleft(spec)
        finally:
            self._turn = None
        now = self._clock()
        for spec in turn.blocked.values():  # held back by a dependency all through the tick
            reason = unmet_dependency(spec, states, now, self._paused)
            if reason:
                log.info("skipped %s: %s", spec.app_name, reason)
                turn.reports[spec.app_name] = JobReport(spec.app_name, Result.SKIPPED, reason)
        return [turn.reports[spec.app_name] for spec in specs if spec.app_name in turn.reports]

    def _next_turn(self, turn: _Turn) -> set[str]:
        """Take up the claim made with the last outcome, or claim the next job; the
        names of the jobs whose state this changed."""
        if turn.pending is not None:  # claimed: it runs, as a claim followed by its run
            chunk, holder, claim = turn.pending
            turn.pending = None
            return self._take(turn, chunk, holder, claim)
        self.interrupts.raise_pending()  # a signal between jobs stops the run here
        changed: set[str] = set()
        chunk = self._chunk(turn, changed)
        if chunk:
            holder = Holder(self.holder.host, self.holder.pid)
            claim = self.store.claim_next(
                _candidates(chunk, turn.states), lease=self.lease, holder=holder
            )
            changed |= self._take(turn, chunk, holder, claim)
        return changed

    def _chunk(self, turn: _Turn, changed: set[str] | None) -> list[JobSpec]:
        """The next jobs to offer a claim, from the head of the queue. Jobs held back
        by a dependency are set aside; a job held by a claim goes through the one-job
        claim, which tells live from abandoned (and recovers), unless ``changed`` is
        None: then the chunk ends before it (no statement is sent here)."""
        now = self._clock()
        chunk: list[JobSpec] = []
        while turn.queue and len(chunk) < CLAIM_CHUNK:
            spec = turn.queue[0]
            state = turn.states.get(spec.app_name)
            if spec.app_name in self._paused:
                turn.queue.popleft()
                turn.reports[spec.app_name] = self._paused_report(spec)
            elif unmet_dependency(spec, turn.states, now, self._paused):
                turn.blocked[spec.app_name] = turn.queue.popleft()  # until a dependency changes
            elif state is not None and state.ongoing is not None:
                if changed is None:
                    break
                turn.queue.popleft()
                report = self._consider(spec, turn.states, now)
                if report is not None:
                    turn.reports[spec.app_name] = report
                changed.add(spec.app_name)
            else:
                chunk.append(turn.queue.popleft())
        return chunk

    def _take(self, turn: _Turn, chunk: list[JobSpec], holder: Holder, claim: Any) -> set[str]:
        """Run the job ``claim`` took from ``chunk`` (the others back at the head of the
        queue), or, when it took none, say why for each of ``chunk``."""
        taken, rows, paused = claim
        if taken is not None:
            spec = next(spec for spec in chunk if spec.app_name == taken.app_name)
            turn.queue.extendleft(reversed([other for other in chunk if other is not spec]))
            report = self._execute(spec, taken, holder, self._clock(), turn.states)
            turn.reports[spec.app_name] = report
            return {spec.app_name}
        for spec in chunk:  # none could be claimed: say why, once each
            if spec.app_name in paused:  # paused since the tick read the states
                turn.states[spec.app_name] = rows[spec.app_name]
                turn.reports[spec.app_name] = self._paused_report(spec)
                continue
            report = _not_claimed(self, spec, turn.states, rows.get(spec.app_name))
            if report is not None:
                turn.reports[spec.app_name] = report
        return {spec.app_name for spec in chunk}

    def _record_outcome(
        self, app_name: str, holder: Holder, outcome: Outcome, *, may_claim: bool
    ) -> JobState | None:
        """Write a run's outcome; while claiming in turn (and not interrupted), claim
        the next job in the same statement, taken up by the next turn."""
        turn = self._turn
        may_claim = may_claim and not self.interrupts.stop_pending()
        chunk = self._chunk(turn, None) if turn is not None and may_claim else []
        if not chunk or turn is None:
            return self.store.finish(app_name, holder, outcome)
        next_holder = Holder(self.holder.host, self.holder.pid)
        state, claim = self.store.finish_and_claim_next(
            app_name,
            holder,
            outcome,
            _candidates(chunk, turn.states),
            lease=self.lease,
            next_holder=next_holder,
        )
        turn.pending = (chunk, next_holder, claim)
        return state


def _candidates(
    chunk: list[JobSpec], states: dict[str, JobState]
) -> list[tuple[str, Sequence[str], JobState | None]]:
    return [(spec.app_name, spec.depends_on, states.get(spec.app_name)) for spec in chunk]


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
