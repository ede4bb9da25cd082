"""The ``jobs`` setting: its entries, parsed into :class:`JobLine` values.

An entry is ``module.Class|FREQUENCY[|HH:MM][|TIMEZONE]`` or
``module.Class|cron(EXPRESSION)[|TIMEZONE]``. Newlines, commas and semicolons
separate entries, except inside ``cron(...)``, whose expression may hold commas.
"""

from __future__ import annotations

import datetime as dt
import re

from crontabber.errors import ConfigError
from crontabber.jobs.schedule import (
    CronSchedule,
    FrequencySchedule,
    Schedule,
    parse_zone,
    zone_name,
)
from crontabber.record import record

_FREQUENCY = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Longer frequencies overflow datetime arithmetic (dates end in year 9999).
MAX_FREQUENCY = dt.timedelta(days=36500)
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")
_CRON = re.compile(r"^cron\s*\((.*)\)$", re.IGNORECASE)
_USAGE = (
    "expected module.ClassName|FREQUENCY[|HH:MM][|TIMEZONE] "
    "or module.ClassName|cron(EXPRESSION)[|TIMEZONE]"
)


@record
class JobLine:
    """One entry of the ``jobs`` setting, parsed but not yet imported.

    ``schedule`` is in the entry's own zone, or in UTC when the entry names
    none; :meth:`schedule_in` puts the latter in the configured default zone.
    """

    class_path: str
    schedule: Schedule
    has_own_zone: bool = False

    @property
    def class_name(self) -> str:
        return self.class_path.rsplit(".", 1)[-1]

    def schedule_in(self, default_zone: dt.tzinfo) -> Schedule:
        return self.schedule if self.has_own_zone else self.schedule.in_zone(default_zone)


def parse_frequency(text: str) -> dt.timedelta:
    """``30s``, ``5m``, ``1h``, ``2d`` -> a timedelta; anything else is a ConfigError."""
    match = _FREQUENCY.match(text.strip())
    if not match or int(match.group(1)) == 0:
        cron_like = " " in text.strip() or text.strip().startswith("@")
        hint = f"; for a cron expression write cron({text.strip()})" if cron_like else ""
        raise ConfigError(
            f"bad frequency {text.strip()!r}: use a whole number and s, m, h or d "
            f"(e.g. 30s, 5m, 1h, 2d){hint}"
        )
    count, unit = int(match.group(1)), match.group(2)
    if count * _UNIT_SECONDS[unit] > MAX_FREQUENCY.total_seconds():
        raise ConfigError(
            f"bad frequency {text.strip()!r}: at most {MAX_FREQUENCY.days}d "
            "(a next run further away than that cannot be computed)"
        )
    return dt.timedelta(**{_UNITS[unit]: count})


def parse_clock_time(text: str) -> dt.time:
    """``HH:MM`` on a 24-hour clock -> a time; anything else is a ConfigError."""
    match = _CLOCK.match(text.strip())
    if match:
        hour, minute = int(match.group(1)), int(match.group(2))
        if hour < 24 and minute < 60:
            return dt.time(hour, minute)
    raise ConfigError(f"bad time {text.strip()!r}: use HH:MM on a 24-hour clock (e.g. 03:30)")


def parse_schedule(fields: list[str]) -> Schedule:
    """``FREQUENCY[|HH:MM]`` or ``cron(EXPRESSION)``, split on ``|``, in UTC."""
    match = _CRON.match(fields[0])
    if match:
        if len(fields) > 1:
            raise ConfigError(
                f"a cron expression takes no time ({fields[1]}): its hour and minute fields say when"
            )
        return CronSchedule(" ".join(match.group(1).split()))
    if fields[0].lower().startswith("cron"):
        raise ConfigError(
            f"bad cron schedule {fields[0]!r}: write cron(EXPRESSION), closing parenthesis "
            "included, e.g. cron(0 2 * * MON-FRI)"
        )
    if len(fields) > 2:
        raise ConfigError(_USAGE)
    frequency = parse_frequency(fields[0])
    time = parse_clock_time(fields[1]) if len(fields) == 2 else None
    if time is not None and frequency < dt.timedelta(days=1):
        raise ConfigError(
            f"a time ({fields[1]}) needs a frequency of at least a day, not {fields[0]}"
        )
    return FrequencySchedule(frequency, time, frequency_text=fields[0])


def parse_job_entry(entry: str) -> JobLine:
    """Parse one entry of the ``jobs`` setting, naming the entry in any error.

    ``module.Class|FREQUENCY[|HH:MM][|TIMEZONE]`` or
    ``module.Class|cron(EXPRESSION)[|TIMEZONE]``. A last field that does not
    start with a digit is a time zone.
    """
    parts = [part.strip() for part in entry.split("|")]
    try:
        if len(parts) < 2 or not all(parts):
            raise ConfigError(_USAGE)
        class_path, fields = parts[0], parts[1:]
        if "." not in class_path:
            raise ConfigError(f"{class_path!r} is not a python.module.ClassName path")
        zone = None
        if len(fields) > 1 and not fields[-1][:1].isdigit():
            zone = parse_zone(fields.pop())
        schedule = parse_schedule(fields)
        if zone is not None:
            if isinstance(schedule, FrequencySchedule) and schedule.time is None:
                raise ConfigError(
                    f"a time zone ({zone_name(zone)}) needs a time (HH:MM) or a cron "
                    f"expression: a frequency alone ({fields[0]}) counts elapsed time"
                )
            schedule = schedule.in_zone(zone)
    except ConfigError as exc:
        raise ConfigError(f"jobs entry {entry.strip()!r}: {exc}") from None
    return JobLine(class_path, schedule, has_own_zone=zone is not None)


def _split_entries(line: str) -> list[str]:
    """Split a line on commas and semicolons, except inside ``cron(...)``."""
    pieces, current, depth = [], "", 0
    for char in line:
        if char in ",;" and depth == 0:
            pieces.append(current)
            current = ""
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(depth - 1, 0)
        current += char
    return [*pieces, current]


def split_jobs_setting(text: str) -> list[str]:
    """The entries of a ``jobs`` setting: comments, blanks and whitespace dropped.

    Newlines, commas and semicolons separate entries, except the commas of a
    cron expression, inside its ``cron(...)``.
    """
    entries = []
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if line.startswith("#"):
            continue
        entries.extend(piece.strip() for piece in _split_entries(line) if piece.strip())
    return entries


def parse_jobs_setting(text: str) -> list[JobLine]:
    """Every entry of a ``jobs`` setting, parsed; the first bad one raises."""
    return [parse_job_entry(entry) for entry in split_jobs_setting(text)]
