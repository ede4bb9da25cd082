"""The sample configuration runs every example job, as the README promises."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from crontabber.config import configman_edge as config
from crontabber.run.runner import Result, Runner
from crontabber.store import open_store

from ..helpers.command import crontabber_command, run_crontabber

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = {"hello", "after-hello", "greeting", "daily-summary", "disk-usage", "weekday-report"}
UNPINNED = {"hello", "after-hello", "disk-usage"}  # due at once, whatever the time of day


def test_the_readme_command_runs_the_examples(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    args = [f"--admin.conf={ROOT / 'myconfig.ini'}", f"--crontabber.database_url=sqlite:///{state}"]
    result = run_crontabber(*args, cwd=tmp_path)
    assert result.status == 0, result.stderr
    for name in UNPINNED:
        assert f"ran {name} in" in result.stderr, result.stderr
    assert run_crontabber(*args, "--nagios", cwd=tmp_path).stdout == "OK - All systems nominal\n"
    assert run_crontabber(*args, "--configtest", cwd=tmp_path).status == 0


def test_every_example_runs_when_its_time_comes(tmp_path: Path) -> None:
    """At 03:00 UTC on a Monday every example, time-pinned ones included, is due."""
    settings = config.load([f"--admin.conf={ROOT / 'myconfig.ini'}"])
    assert {spec.app_name for spec in settings.specs} == EXAMPLES
    store = open_store(f"sqlite:///{tmp_path / 'state.sqlite'}")
    store.ensure_schema()
    monday = dt.datetime(2026, 3, 2, 3, 0, tzinfo=dt.timezone.utc)
    report = Runner(settings.specs, store).run(now=monday)
    store.close()
    assert set(report.with_result(Result.SUCCEEDED)) == EXAMPLES, report


def test_the_daemon_example_pulses_and_stops_on_sigint(tmp_path: Path) -> None:
    """The README's daemon command: it runs the 30s job at once and stops cleanly."""
    import os
    import signal
    import subprocess
    import time

    state = tmp_path / "state.sqlite"
    process = subprocess.Popen(
        [
            *crontabber_command(),
            f"--admin.conf={ROOT / 'example_apps' / 'daemon.ini'}",
            f"--crontabber.database_url=sqlite:///{state}",
            "--daemon",
        ],
        cwd=ROOT,
        env={**os.environ, "logging.level": ""},
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not state.exists() or not run_crontabber(
        f"--admin.conf={ROOT / 'example_apps' / 'daemon.ini'}",
        f"--crontabber.database_url=sqlite:///{state}",
        "--list-jobs",
        cwd=tmp_path,
    ).stdout.count("last run:     20"):
        assert time.monotonic() < deadline, "the pulse never ran"
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "WARNING daemon_example pulse at " in stderr
