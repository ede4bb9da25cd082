"""Cron schedules: names and ranges, bad expressions, zones and DST, first runs, backfill.

Pure arithmetic: every instant is passed in.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest

from crontabber.errors import ConfigError
from crontabber.jobs.schedule import UTC, CronSchedule
from crontabber.jobs.setting import parse_job_entry

from ..helpers.specs import at

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
MINUTE = dt.timedelta(minutes=1)


def runs(schedule: CronSchedule, start: str, count: int) -> list[dt.datetime]:
    """The instants a job runs at when each run succeeds at its scheduled instant."""
    moments, now = [], at(start)
    for _ in range(count):
        now = schedule.next_run_after(now)
        moments.append(now)
    return moments


def ats(*texts: str) -> list[dt.datetime]:
    return [at(text) for text in texts]


# Names, ranges, lists, steps.


def test_weekdays_by_name_in_berlin() -> None:
    schedule = CronSchedule("0 2 * * MON-FRI", BERLIN)
    # Friday 2026-01-02 noon: next Monday, Tuesday at 02:00 CET (01:00 UTC).
    assert runs(schedule, "2026-01-02 12:00", 2) == ats("2026-01-05 01:00", "2026-01-06 01:00")
    assert CronSchedule("0 2 * * mon-fri", BERLIN).next_run_after(at("2026-01-02 12:00")) == at(
        "2026-01-05 01:00"
    )


@pytest.mark.parametrize(
    ("expression", "start", "expected"),
    [
        ("0 9 * JAN,JUL SUN", "2026-01-25 12:00", ["2026-07-05 09:00", "2026-07-12 09:00"]),
        ("*/20 9-17/4 * * *", "2026-01-01 12:50", ["2026-01-01 13:00", "2026-01-01 13:20"]),
        ("0 0 1,15 * *", "2026-01-01 00:00", ["2026-01-15 00:00", "2026-02-01 00:00"]),
        ("0 12 * * 7", "2026-01-01 00:00", ["2026-01-04 12:00", "2026-01-11 12:00"]),
        ("0 0 L * *", "2026-02-01 00:00", ["2026-02-28 00:00", "2026-03-31 00:00"]),
        ("@daily", "2026-01-01 10:00", ["2026-01-02 00:00", "2026-01-03 00:00"]),
        ("@hourly", "2026-01-01 10:00", ["2026-01-01 11:00", "2026-01-01 12:00"]),
        ("@weekly", "2026-01-01 10:00", ["2026-01-04 00:00", "2026-01-11 00:00"]),
        # Both day fields restricted: either one matches, as in cron (13th or a Friday).
        ("0 0 13 * FRI", "2026-02-06 00:00", ["2026-02-13 00:00", "2026-02-20 00:00"]),
    ],
)
def test_cron_fields(expression: str, start: str, expected: list[str]) -> None:
    assert runs(CronSchedule(expression), start, len(expected)) == ats(*expected)


def test_next_run_is_strictly_after_now() -> None:
    schedule = CronSchedule("*/15 * * * *")
    assert schedule.next_run_after(at("2026-01-01 10:15")) == at("2026-01-01 10:30")
    assert schedule.next_run_after(at("2026-01-01 10:14") + dt.timedelta(seconds=59.5)) == at(
        "2026-01-01 10:15"
    )


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("61 2 * * *", "bad minute field '61' in cron expression '61 2 * * *' (minutes are 0-59)"),
        ("*/0 * * * *", "bad minute field '*/0'"),
        ("5-1 * * * *", "bad minute field '5-1'"),
        ("0 24 * * *", "bad hour field '24'"),
        ("0 2 32 * *", "bad day-of-month field '32'"),
        ("0 2 30 2 *", "bad day-of-month field '30'"),
        ("0 2 * 13 *", "bad month field '13'"),
        ("0 2 * JANUARY *", "bad month field 'JANUARY'"),
        ("0 2 * * MON-FIX", "bad day-of-week field 'MON-FIX' in cron expression"),
        ("0 2 * * 8", "bad day-of-week field '8'"),
        ("0 2 * *", "cron expression '0 2 * *' has 4 fields, not 5 (minute hour"),
        ("0 0 2 * * *", "has 6 fields, not 5"),
        ("", "has 0 fields, not 5"),
        ("@reboot", "unknown cron nickname '@reboot'"),
    ],
)
def test_invalid_expressions_name_the_entry_and_the_field(expression: str, message: str) -> None:
    entry = f"jobs.Report|cron({expression})|Europe/Berlin"
    with pytest.raises(ConfigError) as info:
        parse_job_entry(entry)
    assert str(info.value).startswith(f"jobs entry {entry!r}: ")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


# Daylight saving time. Berlin: 2026-03-29 02:00 CET -> 03:00 CEST (01:00 UTC),
# 2026-10-25 03:00 CEST -> 02:00 CET (01:00 UTC). New York: 2026-03-08 02:00 EST ->
# 03:00 EDT (07:00 UTC), 2026-11-01 02:00 EDT -> 01:00 EST (06:00 UTC).


@pytest.mark.parametrize(
    ("expression", "zone", "start", "expected"),
    [
        # A daily time the clocks skip runs once, when they jump; then as usual.
        ("30 2 * * *", BERLIN, "2026-03-28 12:00", ["2026-03-29 01:00", "2026-03-30 00:30"]),
        ("30 2 * * *", NEW_YORK, "2026-03-07 12:00", ["2026-03-08 07:00", "2026-03-09 06:30"]),
        # A daily time that happens twice runs once, the first time.
        ("30 2 * * *", BERLIN, "2026-10-24 12:00", ["2026-10-25 00:30", "2026-10-26 01:30"]),
        ("30 1 * * *", NEW_YORK, "2026-10-31 12:00", ["2026-11-01 05:30", "2026-11-02 06:30"]),
        # A range of fixed hours: the skipped 02:00 merges into 03:00; the repeated 02:00 once.
        (
            "0 1-3 * * *",
            BERLIN,
            "2026-03-28 22:00",
            ["2026-03-29 00:00", "2026-03-29 01:00", "2026-03-29 23:00"],
        ),
        (
            "0 1-3 * * *",
            BERLIN,
            "2026-10-24 22:00",
            ["2026-10-24 23:00", "2026-10-25 00:00", "2026-10-25 02:00"],
        ),
        # Hourly keeps its pace in real time: nothing in the missing hour, both repeated ones.
        (
            "0 * * * *",
            BERLIN,
            "2026-03-28 23:30",
            ["2026-03-29 00:00", "2026-03-29 01:00", "2026-03-29 02:00"],
        ),
        (
            "0 * * * *",
            BERLIN,
            "2026-10-24 23:30",
            ["2026-10-25 00:00", "2026-10-25 01:00", "2026-10-25 02:00"],
        ),
        ("0 * * * *", NEW_YORK, "2026-03-08 06:30", ["2026-03-08 07:00", "2026-03-08 08:00"]),
        (
            "0 * * * *",
            NEW_YORK,
            "2026-11-01 04:30",
            ["2026-11-01 05:00", "2026-11-01 06:00", "2026-11-01 07:00"],
        ),
    ],
)
def test_dst_transitions(expression: str, zone: dt.tzinfo, start: str, expected: list[str]) -> None:
    assert runs(CronSchedule(expression, zone), start, len(expected)) == ats(*expected)


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        (BERLIN, "2026-03-29", 23),
        (BERLIN, "2026-10-25", 25),
        (NEW_YORK, "2026-03-08", 23),
        (NEW_YORK, "2026-11-01", 25),
    ],
)
def test_every_15_minutes_keeps_its_pace_across_dst(zone: dt.tzinfo, day: str, hours: int) -> None:
    schedule = CronSchedule("*/15 * * * *", zone)
    start = dt.datetime.fromisoformat(day).replace(tzinfo=zone).astimezone(UTC)
    end = (dt.datetime.fromisoformat(day) + dt.timedelta(days=1)).replace(tzinfo=zone)
    moments = [start]
    while (following := schedule.next_run_after(moments[-1])) < end:
        moments.append(following)
    assert len(moments) == hours * 4
    assert {b - a for a, b in itertools.pairwise(moments)} == {dt.timedelta(minutes=15)}


def test_a_late_run_in_the_repeated_hour_does_not_run_again() -> None:
    schedule = CronSchedule("30 2 * * *", BERLIN)
    # Succeeded at 02:10 CET, the second 02:10 of 2026-10-25 (after the 02:30 CEST run).
    assert schedule.next_run_after(at("2026-10-25 01:10")) == at("2026-10-26 01:30")


# A job that never ran: due once a scheduled instant of its current local day has come.


def test_never_run_weekday_job_waits_for_its_first_scheduled_instant() -> None:
    schedule = CronSchedule("0 2 * * MON-FRI", BERLIN)
    saturday = at("2026-01-03 12:00")
    assert not schedule.is_due(None, saturday)
    assert schedule.first_run(saturday) == at("2026-01-05 01:00")
    assert not schedule.is_due(None, at("2026-01-05 00:59"))  # Monday 01:59 CET
    assert schedule.is_due(None, at("2026-01-05 01:00"))
    assert schedule.is_due(None, at("2026-01-05 21:00"))  # added later that Monday: runs now


def test_never_run_frequent_job_is_due_at_once() -> None:
    assert CronSchedule("*/15 * * * *", NEW_YORK).is_due(None, at("2026-01-05 05:01"))


def test_recorded_next_run_decides_once_the_job_ran() -> None:
    schedule = CronSchedule("0 2 * * MON-FRI", BERLIN)
    assert not schedule.is_due(at("2026-01-05 01:00"), at("2026-01-05 00:59"))
    assert schedule.is_due(at("2026-01-05 01:00"), at("2026-01-12 09:00"))


# Catch-up and backfill.


def test_after_a_week_down_a_job_runs_once_then_keeps_its_schedule() -> None:
    schedule = CronSchedule("*/15 * * * *", BERLIN)
    next_run = at("2026-03-02 10:15")
    back = at("2026-03-09 10:07")  # a week later: 672 ticks missed
    assert schedule.is_due(next_run, back)
    assert schedule.next_run_after(back) == at("2026-03-09 10:15")


def test_backfill_gets_every_missed_instant_oldest_first() -> None:
    schedule = CronSchedule("0 2 * * MON-FRI", BERLIN)
    dates, next_run = schedule.backfill_plan(at("2026-03-02 01:00"), at("2026-03-09 12:00"))
    assert dates == ats(
        "2026-03-03 01:00",
        "2026-03-04 01:00",
        "2026-03-05 01:00",
        "2026-03-06 01:00",
        "2026-03-09 01:00",
    )
    assert all(date.tzinfo is UTC for date in dates)
    assert next_run == at("2026-03-10 01:00")


def test_backfill_across_spring_forward() -> None:
    schedule = CronSchedule("30 2 * * *", BERLIN)
    dates, next_run = schedule.backfill_plan(at("2026-03-27 01:30"), at("2026-03-31 12:00"))
    assert dates == ats(
        "2026-03-28 01:30", "2026-03-29 01:00", "2026-03-30 00:30", "2026-03-31 00:30"
    )
    assert next_run == at("2026-04-01 00:30")


def test_backfill_never_run_runs_once_for_now() -> None:
    schedule = CronSchedule("0 2 * * *", BERLIN)
    now = at("2026-03-02 01:05")
    assert schedule.backfill_plan(None, now) == ([now], at("2026-03-03 01:00"))


def test_backfill_with_nothing_missed() -> None:
    schedule = CronSchedule("0 2 * * *", BERLIN)
    assert schedule.backfill_plan(at("2026-03-02 01:00"), at("2026-03-02 12:00")) == (
        [],
        at("2026-03-03 01:00"),
    )


# The whole year, ticked every 5 minutes as a crontab line would.


def ticks(start: dt.datetime, end: dt.datetime, step: dt.timedelta) -> Iterator[dt.datetime]:
    while start < end:
        yield start
        start += step


def simulate_year(schedule: CronSchedule) -> list[dt.datetime]:
    """Every tick of 2026 that runs the job, each run succeeding at once."""
    ran, next_run = [], None
    for now in ticks(at("2026-01-01 00:00"), at("2027-01-01 00:00"), 5 * MINUTE):
        if schedule.is_due(next_run, now):
            ran.append(now)
            next_run = schedule.next_run_after(now)
    return ran


def test_weekdays_at_two_in_berlin_all_year_exactly_once() -> None:
    expected = [
        dt.datetime.combine(day, dt.time(2, 0), BERLIN).astimezone(UTC)
        for day in (dt.date(2026, 1, 1) + dt.timedelta(days=n) for n in range(365))
        if day.weekday() < 5
    ]
    assert simulate_year(CronSchedule("0 2 * * MON-FRI", BERLIN)) == expected


def test_daily_at_half_past_two_in_berlin_all_year_once_a_day() -> None:
    ran = simulate_year(CronSchedule("30 2 * * *", BERLIN))
    assert len(ran) == 365
    assert len({moment.astimezone(BERLIN).date() for moment in ran}) == 365
    assert at("2026-03-29 01:00") in ran  # 03:00 CEST: 02:30 did not exist
    assert at("2026-10-25 00:30") in ran and at("2026-10-25 01:30") not in ran
