"""The wall clock shim: a subprocess's wall clock moves, its monotonic clock and its
timed waits do not."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from ..helpers.specs import at
from ..helpers.wallclock import Wallclock

PROBE = """
import datetime as dt, json, threading, time

report = {"time": time.time(), "now": dt.datetime.now(dt.timezone.utc).timestamp(),
          "monotonic": time.monotonic()}
began = time.monotonic()
report["event_wait_result"] = threading.Event().wait(0.2)
report["event_wait"] = time.monotonic() - began
began = time.monotonic()
time.sleep(0.2)
report["sleep"] = time.monotonic() - began
print(json.dumps(report))
"""


def probe(env: dict[str, str], script: str = PROBE) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("offset", [-120, 120])
def test_only_the_wall_clock_is_shifted(wallclock: Wallclock, offset: int) -> None:
    wall_before, monotonic_before = time.time(), time.monotonic()
    report = probe(wallclock.shifted_env(offset))
    wall_after, monotonic_after = time.time(), time.monotonic()
    for clock in ("time", "now"):
        assert wall_before + offset <= report[clock] <= wall_after + offset, clock
    # CLOCK_MONOTONIC is the same for every process on the machine: not shifted.
    assert monotonic_before <= report["monotonic"] <= monotonic_after
    assert report["event_wait_result"] is False
    assert 0.19 <= report["event_wait"] < 5
    assert 0.19 <= report["sleep"] < 5


def test_fixed_env_starts_the_wall_clock_at_the_instant(wallclock: Wallclock) -> None:
    monday = at("2026-03-02 10:00")
    began = time.monotonic()
    report = probe(wallclock.fixed_env(monday))
    startup = time.monotonic() - began
    for clock in ("time", "now"):
        assert monday.timestamp() <= report[clock] <= monday.timestamp() + startup, clock


def test_children_share_the_fixed_clock_instead_of_restarting_it(wallclock: Wallclock) -> None:
    """The shim turns CRONTABBER_TEST_WALL_AT into an offset that children inherit."""
    monday = at("2026-03-02 10:00")
    report = probe(
        wallclock.fixed_env(monday),
        """
        import json, os, subprocess, sys, time
        time.sleep(1)
        child = subprocess.run(
            [sys.executable, "-c", "import time; print(time.time())"],
            capture_output=True, text=True, check=True,
        )
        print(json.dumps({
            "child": float(child.stdout),
            "at": os.environ.get("CRONTABBER_TEST_WALL_AT"),
            "offset": float(os.environ["CRONTABBER_TEST_WALL_OFFSET"]),
        }))
        """,
    )
    assert report["at"] is None
    assert report["offset"] == pytest.approx(monday.timestamp() - time.time(), abs=60)
    assert monday.timestamp() + 1 <= report["child"] < monday.timestamp() + 60


@pytest.mark.parametrize("offset", [-120, 120])
def test_waits_until_a_wall_clock_deadline_keep_their_length(
    wallclock: Wallclock, offset: int
) -> None:
    """A C library that waits until ``CLOCK_REALTIME`` + 0.2 s (reading the shifted clock)
    still waits 0.2 s: the shim shifts such deadlines back. CPython itself waits on the
    monotonic clock where it can; this covers builds and libraries that do not."""
    report = probe(
        wallclock.shifted_env(offset),
        """
        import ctypes, json, time

        libc = ctypes.CDLL(None, use_errno=True)

        class Timespec(ctypes.Structure):
            _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

        def deadline(seconds):
            now = Timespec()
            assert libc.clock_gettime(0, ctypes.byref(now)) == 0  # CLOCK_REALTIME
            total = now.tv_sec * 10**9 + now.tv_nsec + int(seconds * 1e9)
            return Timespec(total // 10**9, total % 10**9)

        def timed(call):
            began = time.monotonic()
            call()
            return time.monotonic() - began

        semaphore = ctypes.create_string_buffer(64)
        assert libc.sem_init(semaphore, 0, 0) == 0
        sem = timed(lambda: libc.sem_timedwait(semaphore, ctypes.byref(deadline(0.2))))
        # Zeroed memory is PTHREAD_MUTEX_INITIALIZER and PTHREAD_COND_INITIALIZER (glibc):
        # a condition variable on the realtime clock.
        mutex, cond = ctypes.create_string_buffer(64), ctypes.create_string_buffer(64)
        assert libc.pthread_mutex_lock(mutex) == 0
        condition = timed(
            lambda: libc.pthread_cond_timedwait(cond, mutex, ctypes.byref(deadline(0.2)))
        )
        mutex_lock = timed(lambda: libc.pthread_mutex_timedlock(mutex, ctypes.byref(deadline(0.2))))
        print(json.dumps({"sem": sem, "condition": condition, "mutex": mutex_lock}))
        """,
    )
    for wait in ("sem", "condition", "mutex"):
        assert 0.19 <= report[wait] < 5, (wait, report)


def test_fixed_env_needs_an_aware_instant(wallclock: Wallclock) -> None:
    with pytest.raises(ValueError, match="aware"):
        wallclock.fixed_env(dt.datetime(2026, 3, 2, 10, 0))
