"""How admin command results look on a terminal (or to a script, as JSON)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

import humanize

from crontabber.jobs.schedule import zone_name
from crontabber.status import JobListing, describe_schedule


def when(value: dt.datetime | None, now: dt.datetime) -> str:
    """``2026-01-01 03:00:00 UTC (3 hours ago)``; ``-`` when there is no time."""
    if value is None:
        return "-"
    return f"{value:%Y-%m-%d %H:%M:%S} UTC ({humanize.naturaltime(value, when=now)})"


def next_run_lines(listing: JobListing, now: dt.datetime) -> list[str]:
    """The next run in UTC and, for a job in another zone, in the job's zone."""
    next_run = listing.next_run(now)
    if next_run <= now and (listing.state is None or listing.state.next_run is None):
        return ["  next run:     due now"]
    lines = [f"  next run:     {when(next_run, now)}"]
    zone = listing.spec.schedule.zone
    if zone_name(zone) != "UTC":
        local = next_run.astimezone(zone)
        lines.append(f"                {local:%Y-%m-%d %H:%M:%S %Z} ({zone_name(zone)})")
    return lines


def listing_text(listings: Sequence[JobListing], now: dt.datetime) -> str:
    blocks = []
    for listing in listings:
        spec, state = listing.spec, listing.state
        lines = [
            f"{spec.app_name} ({spec.class_path})",
            f"  schedule:     {describe_schedule(spec)}",
            f"  depends on:   {', '.join(spec.depends_on) or '-'}",
            f"  state:        {listing.health.value}",
        ]
        if state is not None and state.last_run is not None:
            lines += [
                f"  last run:     {when(state.last_run, now)}",
                f"  last success: {when(state.last_success, now)}",
                *next_run_lines(listing, now),
                f"  error count:  {state.error_count}",
            ]
        else:
            lines += ["  last run:     never run", *next_run_lines(listing, now)]
        if state is not None and state.last_error:
            error = state.last_error
            lines.append(f"  last error:   {error.get('type')}: {error.get('value')}")
            lines += [
                "    " + line for line in str(error.get("traceback") or "").rstrip().splitlines()
            ]
        if state is not None and state.ongoing is not None:
            lines.append(
                f"  ongoing:      since {when(state.ongoing, now)} "
                f"on {state.ongoing_host} pid {state.ongoing_pid}"
            )
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n" if blocks else "no jobs configured\n"


def listing_json(listings: Sequence[JobListing]) -> str:
    """One JSON object per line, per job."""
    return "".join(json.dumps(listing.as_dict(), sort_keys=True) + "\n" for listing in listings)
