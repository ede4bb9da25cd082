"""A job's policies: how its failures are retried, when it pauses itself, how its runs
are spread (jitter) and which days it skips (a calendar).

Each is set in ``[crontabber]`` for every job and in a job's ``[[class-Name]]``
section for that one (see README, "Policies"). Everything here is arithmetic on
instants a caller passes in; nothing reads a clock. Every host computes the same
answers: jitter comes from the job's name and the instant, not from chance.
"""

from __future__ import annotations

import datetime as dt
import zlib

from crontabber.errors import ConfigError
from crontabber.record import record

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from typing import Any

CALENDAR_START = dt.datetime(2000, 1, 1)  # where a calendar's rules count from
# How far past an excluded instant a job's next run is looked for before its calendar is
# found to skip every run.
CALENDAR_SEARCH = dt.timedelta(days=5 * 366)


class Calendar:
    """The days a job skips: RFC 5545 recurrence lines (``RRULE:``, ``RDATE:``,
    ``EXRULE:``, ``EXDATE:``) read by ``dateutil.rrule.rrulestr`` as one set, whose
    days (in the job's time zone) are excluded. ``RRULE:FREQ=WEEKLY;BYDAY=SA,SU``
    skips weekends; ``RDATE:20261225,20261226`` two days; an ``EXDATE`` gives back a
    day a rule took. Rules count from 2000-01-01."""

    def __init__(self, text: str) -> None:
        from dateutil import rrule  # here: only a job with a calendar needs it

        lines = [line.strip() for line in text.replace(";;", "\n").splitlines() if line.strip()]
        self.text = "\n".join(lines)
        try:
            self._set = rrule.rrulestr(
                self.text, forceset=True, dtstart=CALENDAR_START, ignoretz=True
            )
            self._set.after(CALENDAR_START)  # an impossible rule fails here, not mid-run
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"exclude: {self.text!r} is not an RFC 5545 rule set ({exc})"
            ) from None
        self._years: dict[int, frozenset[dt.date]] = {}

    def excludes(self, instant: dt.datetime, zone: dt.tzinfo) -> bool:
        """Whether ``instant`` falls on a day the calendar skips, in ``zone``."""
        day = instant.astimezone(zone).date()
        days = self._years.get(day.year)
        if days is None:  # a year's days at a time: the rules are walked once per year
            start, end = dt.datetime(day.year, 1, 1), dt.datetime(day.year + 1, 1, 1)
            found = self._set.between(start, end, inc=True)
            days = self._years[day.year] = frozenset(
                when.date() for when in found if when.year == day.year
            )
        return day in days

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Calendar) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"Calendar({self.text!r})"


@record
class JobPolicy:
    """One job's policies; the defaults are crontabber's behaviour without any."""

    error_retry_time: float | None = None  # seconds; None: the runner's (error_retry_time)
    error_retry_backoff: float = 1.0  # the n-th retry of a streak waits time x this^(n-1)
    max_error_retry_time: float = 0.0  # the longest a retry waits (0: no limit)
    max_consecutive_failures: int = 0  # pause the job after this many failures in a row
    jitter_seconds: float = 0.0  # each scheduled instant moves by [0, this)
    exclude: Calendar | None = None  # the days the job skips
    ping_url: str = ""  # Healthchecks.io style: /start, the URL on success, /fail

    def retry_after(self, failures: int, default: dt.timedelta) -> dt.timedelta:
        """How long after its ``failures``-th failure in a row (1: the first) a job is
        tried again: ``error_retry_time x error_retry_backoff^(failures-1)``, capped at
        ``max_error_retry_time``."""
        base = default.total_seconds() if self.error_retry_time is None else self.error_retry_time
        try:
            seconds = base * self.error_retry_backoff ** max(failures - 1, 0)
        except OverflowError:
            seconds = float("inf")
        if self.max_error_retry_time > 0:
            seconds = min(seconds, self.max_error_retry_time)
        return dt.timedelta(seconds=min(seconds, 10 * 365 * 86400.0))

    def jitter(self, app_name: str, instant: dt.datetime) -> dt.timedelta:
        """The offset in ``[0, jitter_seconds)`` of ``app_name``'s run at ``instant``: the
        same on every host (a CRC of the name and the instant), spread over the range."""
        if not self.jitter_seconds:
            return dt.timedelta()
        key = f"{app_name}|{instant.astimezone(dt.timezone.utc).isoformat()}".encode()
        fraction = zlib.crc32(key) / 2**32
        return dt.timedelta(seconds=fraction * self.jitter_seconds)


# The policy options: their names in [crontabber] and in a job's section, and kinds.
POLICY_OPTIONS = {
    "error_retry_backoff": float,
    "max_error_retry_time": float,
    "max_consecutive_failures": int,
    "jitter_seconds": float,
    "exclude": str,
    "ping_url": str,
}


def policy_from(
    values: dict[str, Any], base: JobPolicy | None = None, *, prefix: str = ""
) -> JobPolicy:
    """``base`` (the defaults) with the policy options ``values`` gives (empty: not
    given); a ConfigError names a bad one (as ``prefix`` + its name)."""
    policy = base or JobPolicy()
    changes: dict[str, Any] = {}
    for name, kind in POLICY_OPTIONS.items():
        value = values.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if isinstance(value, (list, tuple)):  # configobj splits an unquoted value on commas
            value = ",".join(str(part) for part in value)
        if name == "ping_url":
            if not str(value).startswith(("http://", "https://")):
                raise ConfigError(f"{prefix}ping_url must be an http:// or https:// URL")
            changes[name] = str(value).strip()
            continue
        if name == "exclude":
            try:
                changes[name] = Calendar(str(value))
            except ConfigError as exc:
                raise ConfigError(f"{prefix}{exc}") from None
            continue
        try:
            number = kind(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{prefix}{name}: {value!r} is not a number") from None
        if number < 0 or (name == "error_retry_backoff" and number < 1):
            least = 1 if name == "error_retry_backoff" else 0
            raise ConfigError(f"{prefix}{name} must be at least {least}, not {value}")
        changes[name] = number
    retry = values.get("error_retry_time")
    if retry not in (None, ""):
        try:
            changes["error_retry_time"] = float(retry)
        except (TypeError, ValueError):
            raise ConfigError(f"{prefix}error_retry_time: {retry!r} is not a number") from None
        if changes["error_retry_time"] < 0:
            raise ConfigError(f"{prefix}error_retry_time must not be negative")
    from crontabber.record import replace

    return replace(policy, **changes) if changes else policy
