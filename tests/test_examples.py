"""The sample configuration runs every example job, as the README promises."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from crontabber import config
from crontabber.runner import Result, Runner
from crontabber.store import open_store

from .clitools import run_crontabber

ROOT = Path(__file__).resolve().parent.parent
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
    monday = dt.datetime(2026, 3, 2, 3, 0, tzinfo=dt.UTC)
    report = Runner(settings.specs, store).run(now=monday)
    store.close()
    assert set(report.with_result(Result.SUCCEEDED)) == EXAMPLES, report
