"""The ``jobs`` setting's syntax and frequency schedules (HH:MM in UTC and in a zone)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from crontabber.errors import ConfigError
from crontabber.jobs.schedule import UTC, CronSchedule, FrequencySchedule, local_instant
from crontabber.jobs.setting import parse_job_entry, parse_jobs_setting, split_jobs_setting

from ..helpers.specs import at

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
DAY = dt.timedelta(days=1)


def frequency_of(entry: str) -> FrequencySchedule:
    schedule = parse_job_entry(entry).schedule
    assert isinstance(schedule, FrequencySchedule)
    return schedule


@pytest.mark.parametrize(
    ("text", "expected"),
    [("5m", dt.timedelta(minutes=5)), ("1h", dt.timedelta(hours=1)), ("2d", dt.timedelta(days=2))],
)
def test_frequencies(text: str, expected: dt.timedelta) -> None:
    assert frequency_of(f"a.B|{text}").frequency == expected


def test_entry_with_time() -> None:
    line = parse_job_entry("  pkg.mod.Job | 1d | 03:30 ")
    assert line.class_path == "pkg.mod.Job"
    assert line.class_name == "Job"
    assert line.schedule == FrequencySchedule(DAY, dt.time(3, 30), UTC, "1d")
    assert line.schedule.text == "1d|03:30"
    assert not line.has_own_zone


def test_entry_with_time_and_zone() -> None:
    line = parse_job_entry("pkg.mod.Job|1d|03:30|Europe/Berlin")
    assert line.schedule == FrequencySchedule(DAY, dt.time(3, 30), BERLIN, "1d")
    assert line.has_own_zone
    assert line.schedule_in(NEW_YORK).zone is BERLIN


def test_entry_without_zone_takes_the_default() -> None:
    line = parse_job_entry("pkg.mod.Job|cron(0 2 * * MON-FRI)")
    assert line.schedule_in(BERLIN) == CronSchedule("0 2 * * MON-FRI", BERLIN)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("a.B|5x", "bad frequency '5x'"),
        ("a.B|3000000d", "bad frequency '3000000d': at most 36500d"),
        ("a.B|99999999999d", "bad frequency '99999999999d': at most 36500d"),
        ("a.B|876001h", "bad frequency '876001h': at most 36500d"),
        ("a.B|0m", "bad frequency '0m'"),
        ("a.B|m", "bad frequency 'm'"),
        ("a.B|0 2 * * *", "for a cron expression write cron(0 2 * * *)"),
        ("a.B|1d|25:00", "bad time '25:00'"),
        ("a.B|1d|3pm", "bad time '3pm'"),
        ("a.B|1h|03:00", "a time (03:00) needs a frequency of at least a day"),
        ("a.B", "expected module.ClassName|FREQUENCY"),
        ("a.B|", "expected module.ClassName|FREQUENCY"),
        ("a.B|1d|03:00|", "expected module.ClassName|FREQUENCY"),
        ("a.B|1d|03:00|04:00", "expected module.ClassName|FREQUENCY"),
        ("a.B|1d|03:00|UTC|Europe/Berlin", "expected module.ClassName|FREQUENCY"),
        ("a.B|1d|03:00|Europe/Berln", "unknown time zone 'Europe/Berln'"),
        ("a.B|1d|03:00|../etc/passwd", "unknown time zone '../etc/passwd'"),
        ("a.B|5m|Europe/Berlin", "a time zone (Europe/Berlin) needs a time (HH:MM)"),
        ("a.B|cron(0 2 * * *)|03:00", "a cron expression takes no time (03:00)"),
        ("a.B|cron 0 2 * * *", "write cron(EXPRESSION)"),
        ("Job|5m", "is not a python.module.ClassName path"),
    ],
)
def test_bad_entries_name_the_entry(entry: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_job_entry(entry)
    assert str(info.value).startswith(f"jobs entry {entry.strip()!r}: ")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_jobs_setting_separators_comments_and_blanks() -> None:
    text = """
        # a comment line
        a.One|5m

        a.Two|1h, a.Three|2d ; a.Four|1d|04:00
    """
    assert [line.class_path for line in parse_jobs_setting(text)] == [
        "a.One",
        "a.Two",
        "a.Three",
        "a.Four",
    ]


def test_commas_and_semicolons_inside_cron_do_not_separate() -> None:
    text = "a.One|cron(0 2 * * MON,FRI)|Europe/Berlin, a.Two|cron(0,30 1;2 * * *);a.Three|5m"
    assert split_jobs_setting(text) == [
        "a.One|cron(0 2 * * MON,FRI)|Europe/Berlin",
        "a.Two|cron(0,30 1;2 * * *)",
        "a.Three|5m",
    ]


def test_an_unclosed_cron_is_one_bad_entry() -> None:
    [entry] = split_jobs_setting("a.B|cron(0 2 * * MON,FRI, a.C|5m")
    with pytest.raises(ConfigError, match=r"^jobs entry 'a.B\|cron\(0 2 .*': bad cron schedule"):
        parse_job_entry(entry)


# Frequency schedules in UTC: what crontabber always did.


def test_never_run_is_due_at_once() -> None:
    assert FrequencySchedule(dt.timedelta(minutes=5)).is_due(None, at("2026-01-01 00:00"))


def test_never_run_with_time_waits_for_todays_time() -> None:
    schedule = FrequencySchedule(DAY, dt.time(3, 0))
    assert not schedule.is_due(None, at("2026-01-01 02:59"))
    assert schedule.is_due(None, at("2026-01-01 03:00"))
    assert schedule.first_run(at("2026-01-01 02:59")) == at("2026-01-01 03:00")


def test_due_when_next_run_has_come() -> None:
    schedule = FrequencySchedule(dt.timedelta(hours=1))
    assert not schedule.is_due(at("2026-01-01 10:00"), at("2026-01-01 09:59"))
    assert schedule.is_due(at("2026-01-01 10:00"), at("2026-01-01 10:00"))


def test_next_run_adds_frequency() -> None:
    schedule = FrequencySchedule(dt.timedelta(hours=1))
    assert schedule.next_run_after(at("2026-01-01 10:07")) == at("2026-01-01 11:07")


def test_next_run_is_pinned_to_clock_time() -> None:
    daily = FrequencySchedule(DAY, dt.time(3, 0))
    assert daily.next_run_after(at("2026-01-01 03:17")) == at("2026-01-02 03:00")
    every_other_day = FrequencySchedule(2 * DAY, dt.time(23, 30))
    assert every_other_day.next_run_after(at("2026-01-01 23:45")) == at("2026-01-03 23:30")


def test_backfill_steps_by_frequency_aligned_to_the_time() -> None:
    schedule = FrequencySchedule(DAY, dt.time(3, 0))
    dates, next_run = schedule.backfill_plan(at("2026-01-01 03:00"), at("2026-01-04 03:10"))
    assert dates == [at("2026-01-02 03:00"), at("2026-01-03 03:00"), at("2026-01-04 03:00")]
    assert next_run == at("2026-01-05 03:00")


# HH:MM in a zone, across daylight saving time.


def test_time_is_read_in_the_zone() -> None:
    schedule = FrequencySchedule(DAY, dt.time(3, 0), BERLIN)
    assert schedule.first_run(at("2026-01-10 12:00")) == at("2026-01-10 02:00")  # CET
    assert schedule.next_run_after(at("2026-07-10 01:00")) == at("2026-07-11 01:00")  # CEST


def test_daily_time_skipped_by_spring_forward_runs_once_when_clocks_jump() -> None:
    # Berlin, 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC); 02:30 never happens.
    schedule = FrequencySchedule(DAY, dt.time(2, 30), BERLIN)
    ran_before = at("2026-03-28 01:30")  # 02:30 CET
    on_the_day = schedule.next_run_after(ran_before)
    assert on_the_day == at("2026-03-29 01:00")  # 03:00 CEST, the first valid instant
    assert schedule.next_run_after(on_the_day) == at("2026-03-30 00:30")  # 02:30 CEST


def test_daily_time_repeated_by_fall_back_runs_once() -> None:
    # New York, 2026-11-01: 02:00 EDT becomes 01:00 EST; 01:30 happens twice.
    schedule = FrequencySchedule(DAY, dt.time(1, 30), NEW_YORK)
    on_the_day = schedule.next_run_after(at("2026-10-31 05:30"))  # 01:30 EDT
    assert on_the_day == at("2026-11-01 05:30")  # the first 01:30 (EDT)
    assert schedule.next_run_after(on_the_day) == at("2026-11-02 06:30")  # 01:30 EST
    # Running late, in the second 01:30, does not make another run that day.
    assert schedule.next_run_after(at("2026-11-01 06:40")) == at("2026-11-02 06:30")


def test_backfill_across_dst_gets_one_date_per_local_day() -> None:
    schedule = FrequencySchedule(DAY, dt.time(2, 30), BERLIN)
    dates, next_run = schedule.backfill_plan(at("2026-03-27 01:30"), at("2026-03-30 12:00"))
    assert dates == [at("2026-03-28 01:30"), at("2026-03-29 01:00"), at("2026-03-30 00:30")]
    assert next_run == at("2026-03-31 00:30")


@pytest.mark.parametrize(
    ("wall", "zone", "expected"),
    [
        ("2026-03-29 02:30", BERLIN, "2026-03-29 01:00"),  # skipped: when the clocks jump
        ("2026-10-25 02:30", BERLIN, "2026-10-25 00:30"),  # repeated: the first one (CEST)
        ("2026-03-08 02:00", NEW_YORK, "2026-03-08 07:00"),  # skipped: 03:00 EDT
        ("2026-11-01 01:00", NEW_YORK, "2026-11-01 05:00"),  # repeated: 01:00 EDT
        ("2026-06-01 12:00", UTC, "2026-06-01 12:00"),
    ],
)
def test_local_instant(wall: str, zone: dt.tzinfo, expected: str) -> None:
    naive = dt.datetime.strptime(wall, "%Y-%m-%d %H:%M")
    assert local_instant(naive, zone) == at(expected)
