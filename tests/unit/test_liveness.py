"""/healthz's word on a daemon: alive while its scheduler gets on, and not otherwise."""

from __future__ import annotations

import time
from types import SimpleNamespace

from crontabber.run.daemon import Liveness


def test_a_daemon_that_gets_nowhere_is_not_alive() -> None:
    alive = Liveness(0.05)
    assert alive() is None
    time.sleep(0.1)
    reason = alive()
    assert reason is not None
    assert reason.startswith("the scheduler has not got on for ")
    alive.progress()
    assert alive() is None


def test_a_running_job_s_heartbeat_is_progress() -> None:
    """A long job: no tick ends, but each heartbeat the database answers counts."""
    alive = Liveness(0.05)
    alive.runner = SimpleNamespace(last_beat=0.0)  # type: ignore[assignment]
    time.sleep(0.1)
    assert alive() is not None
    alive.runner.last_beat = time.monotonic()  # type: ignore[union-attr]
    assert alive() is None


def test_stale_after_three_of_the_longest_wait_and_never_under_a_minute() -> None:
    assert Liveness.of(1.0, 2.0).stale_after == 60.0
    assert Liveness.of(10.0, 30.0, 70.0).stale_after == 210.0
