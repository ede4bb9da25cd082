"""When a claim is abandoned, and the heartbeat that keeps a live one fresh.

A process holding a claim refreshes the job row's ``heartbeat`` from a
background thread while the job runs. Another process may take the claim
over only when it is abandoned: its heartbeat is older than a few intervals,
or its holder is on this host and its pid is gone, or it is older than the
hard ``max_age``. A live holder is never taken over.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class LeasePolicy:
    """The rules that decide whether a claim may be taken over."""

    host: str
    heartbeat_interval: dt.timedelta = dt.timedelta(seconds=30)
    stale_intervals: int = 3
    max_age: dt.timedelta = dt.timedelta(hours=12)

    @property
    def stale_after(self) -> dt.timedelta:
        return self.heartbeat_interval * self.stale_intervals

    def abandoned_because(self, state: object, now: dt.datetime) -> str | None:
        """Why the claim recorded in ``state`` is abandoned at ``now``, or None if it is live.

        Ages are whole durations: a 25-hour-old claim is 25 hours old.
        """
        ongoing = getattr(state, "ongoing", None)
        if ongoing is None:
            return None
        host, pid = getattr(state, "ongoing_host", None), getattr(state, "ongoing_pid", None)
        if host == self.host and pid is not None and pid != os.getpid() and not pid_alive(pid):
            return f"its process {pid} on this host is gone"
        heartbeat = getattr(state, "heartbeat", None)
        # A claim without a heartbeat was made by the original crontabber (say, while
        # a team migrates): only its age can tell that it is abandoned.
        if heartbeat is not None and now - heartbeat > self.stale_after:
            return f"its last heartbeat was {(now - heartbeat).total_seconds():.0f}s ago"
        if now - ongoing > self.max_age:
            return f"it is older than {self.max_age}"
        return None


class Heartbeat:
    """Refreshes the heartbeat of the claim being run, every ``interval``, from one thread.

    One per run, not per job: :meth:`holding` names the claim while its job
    runs. ``beat(app_name, holder, now)`` writes through crontabber's own
    connections, never the job's; a failed beat is logged and tried again next
    interval. Times are ``now`` of the job plus the time elapsed, so a run
    given a fixed ``now`` stays consistent with it. The thread starts with
    the first job, so a tick with nothing due starts none.
    """

    def __init__(
        self, beat: Callable[[str, Any, dt.datetime], object], interval: dt.timedelta
    ) -> None:
        self._beat = beat
        self._interval = interval.total_seconds()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._current: tuple[str, Any, dt.datetime, float] | None = None

    def __enter__(self) -> Heartbeat:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._interval + 5)

    @contextlib.contextmanager
    def holding(self, app_name: str, holder: Any, now: dt.datetime) -> Iterator[None]:
        """Keep ``app_name``'s claim by ``holder`` fresh while the block runs."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name="crontabber-heartbeat", daemon=True
            )
            self._thread.start()
        self._current = (app_name, holder, now, time.monotonic())
        try:
            yield
        finally:
            self._current = None

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            current = self._current
            if current is None:
                continue
            app_name, holder, start, started = current
            try:
                self._beat(
                    app_name, holder, start + dt.timedelta(seconds=time.monotonic() - started)
                )
            except Exception as exc:
                log.warning("heartbeat of %s failed (will retry): %s", app_name, exc)
