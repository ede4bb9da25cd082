"""Cron schedules and time zones as a user meets them: the ini file, --configtest, --list-jobs."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from crontabber import App
from crontabber import status as admin
from crontabber.cli import printers
from crontabber.config.configman_edge import read_config
from crontabber.config.settings import settings_from
from crontabber.jobs.schedule import CronSchedule, FrequencySchedule
from crontabber.jobs.spec import JobSpec
from crontabber.run.runner import Runner
from crontabber.store import StateStore

from ..helpers.command import run_crontabber, write_config
from ..helpers.jobs import Job, write_job_module
from ..helpers.specs import at
from ..helpers.wallclock import Wallclock

BERLIN = ZoneInfo("Europe/Berlin")

JOBS = (Job("Report", "report"), Job("Nightly", "nightly"))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_job_module(tmp_path, "cronjobs", *JOBS)
    return tmp_path


def configtest(project: Path, jobs: str, extra: str = "") -> tuple[int, list[str]]:
    config = write_config(project, jobs, extra)
    result = run_crontabber(f"--admin.conf={config}", "--configtest", cwd=project)
    assert result.stderr == ""
    return result.status, result.stdout.splitlines()


def test_configtest_accepts_cron_and_zones(project: Path) -> None:
    status, lines = configtest(
        project,
        "cronjobs.Report|cron(0 2 * * MON,WED,FRI)|Europe/Berlin\ncronjobs.Nightly|1d|03:00",
        "timezone=America/New_York\n",
    )
    assert (status, lines) == (0, ["configuration OK: 2 jobs"])


def test_an_unquoted_one_line_jobs_value_keeps_cron_commas(project: Path) -> None:
    config = project / "oneline.ini"
    config.write_text(
        "[crontabber]\n    jobs=cronjobs.Report|cron(0 2 * * MON,FRI)|Europe/Berlin, "
        "cronjobs.Nightly|1d|03:00\n"
    )
    result = run_crontabber(f"--admin.conf={config}", "--list-jobs", cwd=project)
    assert result.status == 0, result.stderr
    assert "schedule:     cron(0 2 * * MON,FRI) in Europe/Berlin\n" in result.stdout
    assert "schedule:     every 1d at 03:00 UTC\n" in result.stdout


def test_configtest_lists_bad_cron_fields_and_zones(project: Path) -> None:
    status, lines = configtest(
        project,
        "cronjobs.Report|cron(0 2 * * MON-FIX)|Europe/Berlin\n"
        "cronjobs.Nightly|1d|03:00|Europe/Berln",
    )
    assert status == 2
    assert lines == [
        "jobs entry 'cronjobs.Report|cron(0 2 * * MON-FIX)|Europe/Berlin': bad day-of-week "
        "field 'MON-FIX' in cron expression '0 2 * * MON-FIX' "
        "(days of the week are 0-7 (0 and 7 are Sunday) or SUN-SAT)",
        "jobs entry 'cronjobs.Nightly|1d|03:00|Europe/Berln': unknown time zone "
        "'Europe/Berln': use an IANA name such as Europe/Berlin or UTC",
    ]


def test_configtest_reports_a_bad_global_timezone(project: Path) -> None:
    status, lines = configtest(project, "cronjobs.Report|cron(0 2 * * *)", "timezone=Mars/Base\n")
    assert status == 1
    assert lines == [
        "crontabber.timezone: unknown time zone 'Mars/Base': "
        "use an IANA name such as Europe/Berlin or UTC"
    ]


def test_a_run_with_a_bad_cron_is_one_line_and_exit_1(project: Path) -> None:
    config = write_config(project, "cronjobs.Report|cron(61 2 * * *)")
    result = run_crontabber(f"--admin.conf={config}", cwd=project, env={"logging.level": ""})
    assert result.status == 1
    assert result.stderr.endswith(
        " ERROR crontabber misconfigured: jobs entry 'cronjobs.Report|cron(61 2 * * *)': "
        "bad minute field '61' in cron expression '61 2 * * *' (minutes are 0-59)\n"
    )
    assert result.stderr.count("\n") == 1


def test_global_timezone_applies_unless_a_job_names_its_own(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))  # read_config puts project on it
    config = write_config(
        project,
        "cronjobs.Report|cron(0 2 * * MON-FRI)|Europe/Berlin, cronjobs.Nightly|1d|03:00",
        "timezone=America/New_York\n",
    )
    settings = settings_from(read_config([f"--admin.conf={config}"]))
    schedules = {spec.app_name: spec.schedule for spec in settings.specs}
    assert schedules["report"] == CronSchedule("0 2 * * MON-FRI", BERLIN)
    assert schedules["nightly"] == FrequencySchedule(
        dt.timedelta(days=1), dt.time(3, 0), ZoneInfo("America/New_York"), "1d"
    )
    assert settings.problems == ()


def test_list_jobs_command_shows_the_schedule_and_both_zones(
    project: Path, wallclock: Wallclock
) -> None:
    # The process's wall clock starts at Saturday 2026-03-28 12:00 UTC, so the never-run
    # job is first due on Monday 02:00 in Berlin, after the clocks sprang forward. The
    # state database is the default SQLite file: SQLite's 'now' is read from this same
    # shifted clock, so the listing is the same whether it counts from the process's
    # time or the database's.
    config = write_config(project, "cronjobs.Report|cron(0 2 * * MON-FRI)|Europe/Berlin")
    result = run_crontabber(
        f"--admin.conf={config}",
        "--list-jobs",
        cwd=project,
        env=wallclock.fixed_env(SATURDAY),
    )
    assert result.status == 0, result.stderr
    assert result.stdout == (
        "report (cronjobs.Report)\n"
        "  schedule:     cron(0 2 * * MON-FRI) in Europe/Berlin\n"
        "  depends on:   -\n"
        "  state:        never run\n"
        "  last run:     never run\n"
        "  next run:     2026-03-30 00:00:00 UTC (a day from now)\n"
        "                2026-03-30 02:00:00 CEST (Europe/Berlin)\n"
    )


def test_list_jobs_command_says_due_now_once_the_first_instant_has_come(
    project: Path, wallclock: Wallclock
) -> None:
    config = write_config(project, "cronjobs.Report|cron(0 2 * * MON-FRI)|Europe/Berlin")
    monday_morning = at("2026-03-30 09:00")  # 11:00 CEST, after the 02:00 run
    result = run_crontabber(
        f"--admin.conf={config}",
        "--list-jobs",
        cwd=project,
        env=wallclock.fixed_env(monday_morning),
    )
    assert result.status == 0, result.stderr
    assert "  next run:     due now\n" in result.stdout


# The library functions behind --list-jobs, at a fixed instant.


class Report(App):
    app_name = "report"

    def run(self) -> None:
        pass


SPEC = JobSpec(
    app_name="report",
    app_class=Report,
    class_path=f"{__name__}.Report",
    schedule=CronSchedule("0 2 * * MON-FRI", BERLIN),
)
SATURDAY = at("2026-03-28 12:00")


def test_listing_of_a_never_run_cron_job_shows_its_first_run() -> None:
    text = printers.listing_text(admin.list_jobs([SPEC], {}), SATURDAY)
    assert "  schedule:     cron(0 2 * * MON-FRI) in Europe/Berlin\n" in text
    assert "  last run:     never run\n" in text
    # Monday 02:00 in Berlin is CEST after the clocks sprang forward on Sunday.
    assert "  next run:     2026-03-30 00:00:00 UTC (a day from now)\n" in text
    assert "                2026-03-30 02:00:00 CEST (Europe/Berlin)\n" in text


def test_listing_of_a_due_never_run_job() -> None:
    text = printers.listing_text(admin.list_jobs([SPEC], {}), at("2026-03-30 09:00"))
    assert "  next run:     due now\n" in text


def test_listing_after_a_run(store: StateStore) -> None:
    Runner([SPEC], store).run(now=at("2026-03-27 01:00"))  # Friday 02:00 CET
    listings = admin.list_jobs([SPEC], store.load_states())
    text = printers.listing_text(listings, SATURDAY)
    assert "  next run:     2026-03-30 00:00:00 UTC (a day from now)\n" in text
    assert "                2026-03-30 02:00:00 CEST (Europe/Berlin)\n" in text
    row = json.loads(printers.listing_json(listings))
    assert row["schedule"] == "cron(0 2 * * MON-FRI)"
    assert row["cron"] == "0 2 * * MON-FRI"
    assert row["timezone"] == "Europe/Berlin"
    assert row["frequency"] is None and row["time"] is None
    assert row["next_run"] == "2026-03-30T00:00:00+00:00"
    assert row["next_run_local"] == "2026-03-30T02:00:00+02:00"


def test_describe_schedule() -> None:
    nightly = JobSpec(
        app_name="nightly",
        app_class=Report,
        class_path="x.Nightly",
        schedule=FrequencySchedule(dt.timedelta(days=1), dt.time(3, 0), BERLIN, "1d"),
    )
    assert admin.describe_schedule(nightly) == "every 1d at 03:00 Europe/Berlin"
    assert admin.describe_schedule(SPEC) == "cron(0 2 * * MON-FRI) in Europe/Berlin"
