"""Schedule arithmetic: frequencies, cron expressions, time zones and DST.

Everything here is pure: the current time is always an argument. Every instant
taken or returned is a timezone-aware UTC datetime; clock times (HH:MM) and cron
fields are read in the schedule's zone.

Daylight saving time, for a job at a fixed local time (HH:MM, or a cron
expression whose minute and hour fields are numbers, lists or ranges): a local
time the clocks skip runs at the first valid instant after it, once; a local
time that happens twice runs once, at its first occurrence. Cron expressions
that step through the hours (``*/15 * * * *``, ``0 * * * *``) keep their pace in
real time, as Debian's cron does (the ``cronsim`` library computes them).
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Iterator

from crontabber.errors import ConfigError
from crontabber.record import record, replace

UTC = dt.timezone.utc


# Time zones and local wall-clock times.


def parse_zone(name: str) -> dt.tzinfo:
    """An IANA time zone name -> its tzinfo; anything else is a ConfigError.

    ``UTC``, the default, is ``datetime.timezone.utc``: the same instants and the same
    name, without importing zoneinfo (and the tz database) on every tick.
    """
    if name == "UTC":
        return UTC
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigError(
            f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin or UTC"
        ) from None


def zone_name(zone: dt.tzinfo) -> str:
    """``Europe/Berlin``, ``UTC``: the name a zone was configured with."""
    return getattr(zone, "key", None) or str(zone)


def local_wall(moment: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """The naive wall-clock time in ``zone`` at the instant ``moment``."""
    return moment.astimezone(zone).replace(tzinfo=None)


def local_instant(wall: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """The UTC instant of the wall-clock time ``wall`` in ``zone``.

    A time that happens twice (the clocks fell back) is its first occurrence;
    a time that never happens (the clocks sprang forward over it) is the first
    valid instant after it, the moment the clocks jumped.
    """
    while True:
        instant = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
        if local_wall(instant, zone) == wall:
            return instant
        wall = wall.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)


def pin_to_time(moment: dt.datetime, time: dt.time) -> dt.datetime:
    return moment.replace(hour=time.hour, minute=time.minute, second=0, microsecond=0)


# Schedules.


class Schedule(abc.ABC):
    """When a job runs: the three questions the runner asks, and how it reads.

    Implementations are frozen records (:mod:`crontabber.record`) with a ``zone`` field.
    """

    zone: dt.tzinfo

    @property
    @abc.abstractmethod
    def text(self) -> str:
        """The schedule as written in the ``jobs`` line, without its zone (``1d|03:00``)."""

    @abc.abstractmethod
    def first_run(self, now: dt.datetime) -> dt.datetime:
        """When a job that never ran is due, seen at ``now``; at or before ``now``: due now."""

    @abc.abstractmethod
    def next_run_after(self, now: dt.datetime) -> dt.datetime:
        """When a job that succeeded at ``now`` runs next; always after ``now``.

        A job that missed several runs (crontabber was down) runs once and then
        returns to its schedule: this never returns a missed instant.
        """

    def backfill_plan(
        self, last_success: dt.datetime | None, now: dt.datetime
    ) -> tuple[list[dt.datetime], dt.datetime]:
        """The dates a backfill job runs for at ``now``, oldest first, and its next run.

        One date per scheduled instant missed since ``last_success``, up to
        ``now``; a job that never succeeded runs once, for ``now``.
        """
        if last_success is None:
            return [now], self.next_run_after(now)
        return self._missed_since(last_success, now)

    @abc.abstractmethod
    def _missed_since(
        self, last_success: dt.datetime, now: dt.datetime
    ) -> tuple[list[dt.datetime], dt.datetime]:
        """The scheduled instants after ``last_success`` up to ``now``, and the next one."""

    def is_due(self, next_run: dt.datetime | None, now: dt.datetime) -> bool:
        """Whether a job whose recorded next run is ``next_run`` (None: never ran) is due."""
        if next_run is None:
            return self.first_run(now) <= now
        return next_run <= now

    def in_zone(self, zone: dt.tzinfo) -> Schedule:
        """The same schedule read in another zone."""
        return replace(self, zone=zone)  # type: ignore[type-var]


@record
class FrequencySchedule(Schedule):
    """``FREQUENCY[|HH:MM]``: every so long, or every so many days at a local time.

    Without a time the frequency is elapsed time and the zone plays no part. A
    job that never ran is due at once, or with a time once today's time has come.
    """

    frequency: dt.timedelta
    time: dt.time | None = None
    zone: dt.tzinfo = UTC
    frequency_text: str = ""

    @property
    def text(self) -> str:
        text = self.frequency_text or format_frequency(self.frequency)
        return f"{text}|{self.time:%H:%M}" if self.time is not None else text

    def _at_time(self, wall: dt.datetime) -> dt.datetime:
        assert self.time is not None
        return local_instant(pin_to_time(wall, self.time), self.zone)

    def first_run(self, now: dt.datetime) -> dt.datetime:
        if self.time is None:
            return now
        return self._at_time(local_wall(now, self.zone))

    def next_run_after(self, now: dt.datetime) -> dt.datetime:
        if self.time is None:
            return now + self.frequency
        return self._at_time(local_wall(now, self.zone) + self.frequency)

    def _missed_since(
        self, last_success: dt.datetime, now: dt.datetime
    ) -> tuple[list[dt.datetime], dt.datetime]:
        dates = []
        if self.time is None:
            when = last_success
            while when + self.frequency <= now:
                when += self.frequency
                dates.append(when)
            return dates, when + self.frequency
        wall = pin_to_time(local_wall(last_success, self.zone), self.time)
        while (following := self._at_time(wall + self.frequency)) <= now:
            dates.append(following)
            wall += self.frequency
        return dates, following


_CRON_NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_CRON_FIELDS = {
    "minute": "minutes are 0-59",
    "hour": "hours are 0-23",
    "day-of-month": "days of the month are 1-31, L or LW, and must exist in the months given",
    "month": "months are 1-12 or JAN-DEC",
    "day-of-week": "days of the week are 0-7 (0 and 7 are Sunday) or SUN-SAT",
}
# Any fixed instant works: validation only checks that an expression ever matches.
_CRON_REFERENCE = dt.datetime(2000, 1, 1, tzinfo=UTC)


@record
class CronSchedule(Schedule):
    """``cron(EXPRESSION)``: a standard 5-field cron expression read in ``zone``.

    A job that never ran is due once a scheduled instant of the current day (in
    its zone) has come: it never runs before its schedule says so.
    """

    expression: str
    zone: dt.tzinfo = UTC

    def __post_init__(self) -> None:
        check_cron_expression(self.expression)

    @property
    def text(self) -> str:
        return f"cron({self.expression})"

    def instants_after(self, moment: dt.datetime) -> Iterator[dt.datetime]:
        """The scheduled instants after ``moment``, in order, each once."""
        fields = _CRON_NICKNAMES.get(self.expression.lower(), self.expression)
        last = moment
        from cronsim import CronSim  # imported by the ticks that compute a cron schedule

        for local in CronSim(fields, moment.astimezone(self.zone)):
            instant = local.astimezone(UTC)
            if instant > last:  # a repeated local hour can give an instant again
                last = instant
                yield instant

    def _next_instant(self, moment: dt.datetime) -> dt.datetime:
        instant = next(self.instants_after(moment), None)
        if instant is None:
            raise ConfigError(f"cron expression {self.expression!r} never matches again")
        return instant

    def first_run(self, now: dt.datetime) -> dt.datetime:
        today = local_wall(now, self.zone).replace(hour=0, minute=0, second=0, microsecond=0)
        start_of_day = local_instant(today, self.zone)
        return self._next_instant(start_of_day - dt.timedelta(microseconds=1))

    def next_run_after(self, now: dt.datetime) -> dt.datetime:
        return self._next_instant(now)

    def _missed_since(
        self, last_success: dt.datetime, now: dt.datetime
    ) -> tuple[list[dt.datetime], dt.datetime]:
        dates = []
        for instant in self.instants_after(last_success):
            if instant > now:
                return dates, instant
            dates.append(instant)
        raise ConfigError(f"cron expression {self.expression!r} never matches again")


def check_cron_expression(expression: str) -> None:
    """Raise a ConfigError that names the bad field unless ``expression`` is a usable cron."""
    if expression.startswith("@") and expression.lower() not in _CRON_NICKNAMES:
        raise ConfigError(
            f"unknown cron nickname {expression!r}: use @yearly, @monthly, @weekly, "
            "@daily or @hourly, or 5 fields"
        )
    fields = _CRON_NICKNAMES.get(expression.lower(), expression).split()
    if len(fields) != 5:
        raise ConfigError(
            f"cron expression {expression!r} has {len(fields)} field"
            f"{'' if len(fields) == 1 else 's'}, not 5 (minute hour day-of-month month day-of-week)"
        )
    from cronsim import CronSim, CronSimError

    try:
        matches = CronSim(" ".join(fields), _CRON_REFERENCE)
    except CronSimError as exc:
        field = str(exc).removeprefix("Bad ")
        if field not in _CRON_FIELDS:
            raise ConfigError(f"bad cron expression {expression!r}: {exc}") from None
        text = fields[list(_CRON_FIELDS).index(field)]
        raise ConfigError(
            f"bad {field} field {text!r} in cron expression {expression!r} ({_CRON_FIELDS[field]})"
        ) from None
    if next(matches, None) is None:
        raise ConfigError(f"cron expression {expression!r} never matches a date")


def format_frequency(frequency: dt.timedelta) -> str:
    """The shortest ``30s``/``5m``/``1h``/``2d`` form of a frequency."""
    seconds = int(frequency.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
