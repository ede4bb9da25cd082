"""When a claim is abandoned, and the heartbeat that keeps a live one leased.

A claim is a lease in the database's clock: claiming a job sets its
``lease_expires`` to the database's time plus the lease window
(``heartbeat_interval`` x ``heartbeat_stale_intervals``), and a background
thread of the holder renews it every ``heartbeat_interval`` from the claim until
the outcome is committed. No host's clock takes part. Another process may take
the claim over only when it is abandoned: the database finds its lease lapsed
(time the server was down not counted), or its holder is on this host and its
pid is gone, or it is older than the hard ``max_age``. The rule is one SQL
expression (``abandoned`` in ``postgresql.sql`` and ``sqlite.sql``), evaluated
by the database inside the claiming statement, on the locked row. A live holder
is never taken over.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator

from crontabber.db.retry import describe_error
from crontabber.record import record
from crontabber.store.records import abandoned_error

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from typing import Any

    from crontabber.store.records import JobState

log = logging.getLogger("crontabber")


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, and belongs to someone else
        return True
    return True


@record
class LeasePolicy:
    """The lease window, the hard age limit, and who this host is.

    The rule itself is SQL (the ``abandoned`` statement of ``postgresql.sql``
    and ``sqlite.sql``), evaluated by the database on the locked row; this
    class supplies its inputs and words its verdicts.
    """

    host: str
    heartbeat_interval: dt.timedelta = dt.timedelta(seconds=30)
    stale_intervals: int = 3
    max_age: dt.timedelta = dt.timedelta(hours=12)

    @property
    def window(self) -> dt.timedelta:
        """How long a claim stays leased without a heartbeat."""
        return self.heartbeat_interval * self.stale_intervals

    def dead_local_token(self, state: JobState | None) -> str | None:
        """The token of ``state``'s claim when its holder was on this host and its
        process is gone: the one fact the database cannot check for itself."""
        if state is None or state.ongoing is None or state.ongoing_host != self.host:
            return None
        pid = state.ongoing_pid
        if pid is None or pid == os.getpid() or pid_alive(pid):
            return None
        return state.ongoing_token

    def reason(self, verdict: str, state: JobState, db_now: dt.datetime) -> str:
        """The database's verdict on an abandoned claim (``pid``, ``lease``, ``age``) in words.

        Ages are whole durations in the database's clock: a 25-hour-old claim is 25
        hours old.
        """
        if verdict == "pid":
            return f"its process {state.ongoing_pid} on this host is gone"
        if verdict == "lease":
            beat = state.heartbeat or state.ongoing or db_now
            return (
                "its lease expired: the last heartbeat was "
                f"{(db_now - beat).total_seconds():.0f}s ago"
            )
        return f"it is older than {self.max_age}"

    def recovery(
        self,
        state: JobState,
        reason: str,
        params: dict[str, Any],
        retry_after: dt.timedelta,
        db_now: dt.datetime,
    ) -> dict[str, Any]:
        """The claim's ``params`` with what records the abandoned claim in ``state`` as a
        failed run, due again ``retry_after`` later (see ``StateStore._recover``)."""
        error = abandoned_error(state, reason)
        token = state.ongoing_token
        return {
            **params,
            "error": error,
            "retry_after_seconds": retry_after.total_seconds(),
            "abandoned_since": state.ongoing,
            "abandoned_token": token,
            "exc_type": error["type"],
            "exc_value": error["value"],
            "log_token": f"abandoned:{token}" if token else None,
            "abandoned_host": state.ongoing_host,
            "abandoned_pid": state.ongoing_pid,
            "db_now": db_now,
        }


class Heartbeat:
    """Renews the lease of the claim being run, every ``interval``, from one thread, and
    says when it is lost.

    One per run, not per job: :meth:`holding` names the claim from the moment it
    is made until its outcome is committed. ``beat(app_name, holder)`` writes
    the database's time through crontabber's own connection, never the job's,
    and returns False when the claim is no longer ours. A beat is one attempt:
    a failed one is said once (not every interval) and tried again an interval
    later, so a beat never waits out a retry back-off while the lease runs down.
    The thread starts with the first job, so a tick with nothing due starts none.

    The lease is lost, and ``on_lost(app_name, holder, reason)`` called once,
    when a beat finds the claim gone; when beats keep failing past the renew
    deadline, two thirds of the lease ``window`` since the last renewal
    (client-go's RenewDeadline), time the server was down for everyone
    (``server_down(exc, within)``, which answers within that many seconds) excepted, as the lease rule excepts it; or when the process wakes from a pause longer
    than the ``window`` (SIGSTOP, a frozen VM), as the monotonic clock tells,
    without waiting for a beat: the lease lapsed meanwhile and another host may
    be running the job.

    A beat that reads an operator's cancel (``beat`` returns ``"cancel"``) renews
    the lease and calls ``on_cancel(app_name, holder)`` once: the run is stopped
    and recorded by its holder, as any run.
    """

    def __init__(
        self,
        beat: Callable[[str, Any], bool],
        interval: dt.timedelta,
        *,
        window: dt.timedelta | None = None,
        on_lost: Callable[[str, Any, str], None] | None = None,
        on_cancel: Callable[[str, Any], None] | None = None,
        server_down: Callable[[BaseException, float], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._beat = beat
        self._interval = interval.total_seconds()
        self._window = None if window is None else window.total_seconds()
        self._deadline = None if window is None else window.total_seconds() * 2 / 3
        self._on_lost = on_lost
        self._on_cancel = on_cancel
        self._cancelled: set[str] = set()  # tokens whose run an operator cancelled
        self._server_down = server_down
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._current: tuple[str, Any] | None = None
        self._renewed = 0.0  # when the last renewal that held was sent (monotonic)
        self._failing = False
        self._lost: dict[str, str] = {}  # token -> why its lease was lost
        # Claims whose outcome is being written: that write releases the claim, so a
        # beat that finds it gone then is no news (the write says if it was taken over).
        self._finishing: set[str] = set()

    def __enter__(self) -> Heartbeat:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._interval + 5)

    @contextlib.contextmanager
    def holding(self, app_name: str, holder: Any) -> Iterator[None]:
        """Keep ``app_name``'s claim by ``holder`` leased while the block runs."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name="crontabber-heartbeat", daemon=True
            )
            self._thread.start()
        self._renewed = self._clock()
        self._failing = False  # a failure is said once per claim
        self._current = (app_name, holder)
        try:
            yield
        finally:
            self._current = None

    def finishing(self, holder: Any) -> None:
        """The outcome of ``holder``'s claim is about to be written: beats go on until
        it is committed, but one that finds the claim released says nothing."""
        self._finishing.add(holder.token)

    def held_until(self) -> tuple[float, float] | None:
        """When the running claim's lease must be given up unless renewed (its renew
        deadline) and when it lapses, in ``time.monotonic()`` seconds (system-wide on
        Linux: a run's process can hold itself to them); None without a window."""
        if self._window is None or self._deadline is None:
            return None
        return self._renewed + self._deadline, self._renewed + self._window

    def lost(self, holder: Any) -> str | None:
        """Why ``holder``'s lease was lost, or None while it holds."""
        return self._lost.get(holder.token)

    def _loop(self) -> None:
        woke = self._clock()
        while not self._stop.wait(self._interval):
            slept, woke = self._clock() - woke, self._clock()
            current = self._current
            if current is None or current[1].token in self._lost:
                continue
            app_name, holder = current
            if self._window is not None and slept > self._window:  # paused, not sleeping
                self._lose(
                    current,
                    f"this process was paused for {slept:.1f}s, longer than its "
                    f"{self._window:g}s lease",
                )
                continue
            sent = self._clock()
            try:
                held = self._beat(app_name, holder)
            except Exception as exc:
                if not self._failing:
                    self._failing = True
                    said = describe_error(exc)
                    log.warning("heartbeat of %s failed (will retry): %s", app_name, said)
                since = self._clock() - self._renewed
                left = self._interval if self._deadline is None else self._deadline - since
                if self._server_down is not None and self._server_down(exc, max(left, 0.0)):
                    # Down for every host: the database grants a lease a full window
                    # from its start, so no time runs against this one meanwhile.
                    self._renewed = self._clock()
                    continue
                since = self._clock() - self._renewed
                if self._deadline is not None and since > self._deadline:
                    # Not renewed, not taken over (a beat that fails cannot tell): say why.
                    said = describe_error(exc)
                    self._lose(current, f"it could not be renewed for {since:.1f}s: {said}")
                continue
            if self._failing:
                self._failing = False
                log.warning("heartbeat of %s renews the lease again", app_name)
            if held:
                self._renewed = sent
                if held == "cancel" and holder.token not in self._cancelled:
                    self._cancelled.add(holder.token)
                    if self._on_cancel is not None and holder.token not in self._finishing:
                        self._on_cancel(app_name, holder)
            elif holder.token not in self._finishing:
                self._lose(current, "the claim was taken over by another process")

    def _lose(self, current: tuple[str, Any], reason: str) -> None:
        app_name, holder = current
        self._lost[holder.token] = reason
        log.warning("%s: its lease is lost: %s", app_name, reason)
        if self._on_lost is not None:
            self._on_lost(app_name, holder, reason)
