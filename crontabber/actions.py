"""What operators do to the jobs' state, as library functions: reset a job, remove ghosts.

Each acts through the state store, in short transactions of its own, and
returns what it did; the CLI prints it.
"""

from __future__ import annotations

from collections.abc import Sequence

from crontabber.errors import JobIsOngoing, UnknownJob
from crontabber.jobs.spec import JobSpec
from crontabber.record import record
from crontabber.status import audit_ghosts, find_job
from crontabber.store.abc import StateStore
from crontabber.store.records import ResetStatus


@record
class ResetResult:
    app_name: str
    was_reset: bool

    @property
    def message(self) -> str:
        if self.was_reset:
            return f"reset {self.app_name}: it will run as if it had never run"
        return f"{self.app_name} has no state to reset (never run, or already reset)"


def reset_job(
    store: StateStore, specs: Sequence[JobSpec], name: str, *, force: bool
) -> ResetResult:
    """Forget a job's state; its log rows stay. An ongoing job needs ``force``.

    ``name`` is a configured job's app name or class, or the app name of a ghost:
    a job only the state table still knows (see :func:`audit_ghosts`).
    """
    try:
        app_name = find_job(specs, name).app_name
    except UnknownJob:
        if name not in store.load_states():
            raise
        app_name = name  # a ghost
    status, state = store.reset(app_name, force=force)
    if status is ResetStatus.ONGOING:
        raise JobIsOngoing(
            f"{app_name} is running on {state.ongoing_host} pid {state.ongoing_pid} since "
            f"{state.ongoing:%Y-%m-%d %H:%M:%S} UTC; not reset (use --force to reset it anyway)"
        )
    return ResetResult(app_name, status is ResetStatus.RESET)


def remove_ghosts(store: StateStore, specs: Sequence[JobSpec]) -> list[ResetResult]:
    """Forget every ghost's state, each in its own transaction (its log rows stay).

    A ghost is no configured job, so nothing runs it: one still marked ongoing is
    removed too.
    """
    return [
        reset_job(store, specs, name, force=True)
        for name in audit_ghosts(specs, store.load_states())
    ]
