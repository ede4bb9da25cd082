"""A job's policies (crontabber/jobs/policy.py): retry backoff, jitter, calendars, and
the options that set them."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from zoneinfo import ZoneInfo

import pytest

from crontabber import App
from crontabber.errors import ConfigError
from crontabber.jobs.policy import Calendar, JobPolicy, policy_from
from crontabber.jobs.schedule import CronSchedule, FrequencySchedule
from crontabber.jobs.spec import JobSpec
from crontabber.record import replace

from ..helpers.specs import at

MINUTE = dt.timedelta(minutes=1)
DEFAULT = dt.timedelta(seconds=300)


class Nightly(App):
    app_name = "nightly"


def spec(schedule: object, policy: JobPolicy) -> JobSpec:
    return JobSpec("nightly", Nightly, "tests.Nightly", schedule, policy=policy)  # type: ignore[arg-type]


def test_retries_back_off_by_the_factor_up_to_the_cap() -> None:
    policy = JobPolicy(error_retry_backoff=2, max_error_retry_time=1000)
    waits = [policy.retry_after(n, DEFAULT).total_seconds() for n in range(1, 6)]
    assert waits == [300, 600, 1000, 1000, 1000]
    assert JobPolicy().retry_after(7, DEFAULT) == DEFAULT  # factor 1: today's fixed delay
    assert JobPolicy(error_retry_time=60).retry_after(1, DEFAULT) == MINUTE
    huge = JobPolicy(error_retry_backoff=10).retry_after(10_000, DEFAULT)
    assert huge == dt.timedelta(days=3650)  # no overflow


def test_jitter_is_the_same_everywhere_and_spread_over_its_range() -> None:
    policy = JobPolicy(jitter_seconds=600)
    instants = [at("2026-12-01 06:00") + n * dt.timedelta(days=1) for n in range(200)]
    offsets = [policy.jitter("nightly", when).total_seconds() for when in instants]
    assert all(0 <= offset < 600 for offset in offsets)
    assert max(offsets) - min(offsets) > 400  # spread, not one offset for every run
    assert policy.jitter("other", instants[0]) != policy.jitter("nightly", instants[0])
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import datetime as dt; from crontabber.jobs.policy import JobPolicy; "
            "print(JobPolicy(jitter_seconds=600).jitter('nightly', "
            "dt.datetime(2026, 12, 1, 6, tzinfo=dt.timezone.utc)).total_seconds())",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert float(child.stdout) == offsets[0]  # another process, another host: the same
    assert JobPolicy().jitter("nightly", instants[0]) == dt.timedelta()


def test_jitter_moves_the_next_run_of_a_job() -> None:
    daily = FrequencySchedule(dt.timedelta(days=1), dt.time(6, 0))
    plain = spec(daily, JobPolicy())
    jittered = spec(daily, JobPolicy(jitter_seconds=600))
    now = at("2026-12-01 07:00")
    base = plain.next_run_after(now)
    assert base == at("2026-12-02 06:00")
    assert base <= jittered.next_run_after(now) < base + dt.timedelta(minutes=10)
    assert jittered.next_run_after(now) == base + jittered.policy.jitter("nightly", base)


def test_a_calendar_skips_weekends_and_a_holiday_in_the_jobs_zone() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    calendar = Calendar("RRULE:FREQ=WEEKLY;BYDAY=SA,SU\nRDATE:20261224,20261225")
    # 2026-12-05 is a Saturday; 00:30 in Berlin is still Friday 23:30 in UTC.
    assert calendar.excludes(at("2026-12-04 23:30"), berlin)
    assert not calendar.excludes(at("2026-12-04 23:30"), dt.timezone.utc)
    assert calendar.excludes(at("2026-12-24 12:00"), berlin)
    assert not calendar.excludes(at("2026-12-23 12:00"), berlin)
    given_back = Calendar("RRULE:FREQ=WEEKLY;BYDAY=SA,SU\nEXDATE:20261205")
    assert not given_back.excludes(at("2026-12-05 12:00"), dt.timezone.utc)


def test_an_excluded_day_is_skipped_by_the_next_run_and_by_a_backfill() -> None:
    cron = CronSchedule("0 6 * * *")
    holiday = spec(cron, JobPolicy(exclude=Calendar("RDATE:20261225")))
    assert holiday.next_run_after(at("2026-12-24 07:00")) == at("2026-12-26 06:00")
    assert holiday.first_run(at("2026-12-25 00:10")) == at("2026-12-26 06:00")
    backfill = replace(holiday, app_class=type("Back", (Nightly,), {"is_backfill": True}))
    dates, following = backfill.backfill_plan(at("2026-12-23 06:00"), at("2026-12-26 07:00"))
    assert dates == [at("2026-12-24 06:00"), at("2026-12-26 06:00")]
    assert following == at("2026-12-27 06:00")
    never = spec(cron, JobPolicy(exclude=Calendar("RRULE:FREQ=DAILY")))
    with pytest.raises(ConfigError, match="skips every run"):
        never.next_run_after(at("2026-12-24 07:00"))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"error_retry_backoff": "0.5"}, "x.error_retry_backoff must be at least 1, not 0.5"),
        ({"jitter_seconds": "soon"}, "x.jitter_seconds: 'soon' is not a number"),
        ({"max_consecutive_failures": "-1"}, "x.max_consecutive_failures must be at least 0"),
        ({"exclude": "RRULE:FREQ=SOMETIMES"}, "x.exclude: 'RRULE:FREQ=SOMETIMES' is not an RFC"),
        ({"error_retry_time": "-5"}, "x.error_retry_time must not be negative"),
    ],
)
def test_bad_policy_values_are_one_line_config_errors(values: dict, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        policy_from(values, prefix="x.")
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_a_jobs_own_values_override_the_defaults_and_commas_survive() -> None:
    defaults = policy_from({"error_retry_backoff": "2", "jitter_seconds": ""})
    assert defaults == JobPolicy(error_retry_backoff=2)
    own = policy_from(
        {"jitter_seconds": "30", "exclude": ["RRULE:FREQ=WEEKLY;BYDAY=SA", "SU"]}, defaults
    )
    assert own.error_retry_backoff == 2 and own.jitter_seconds == 30
    assert own.exclude == Calendar("RRULE:FREQ=WEEKLY;BYDAY=SA,SU")
