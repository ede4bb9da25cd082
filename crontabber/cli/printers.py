"""How admin command results look on a terminal (or to a script, as JSON)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

import humanize

from crontabber.jobs.schedule import zone_name
from crontabber.status import JobListing, describe_schedule, run_dict

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from crontabber.store.records import AuditEntry, LogEntry, LogPage

OUTPUT_LINES = 10  # of each run's output --history shows (--json: all of it)


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
            f"  state:        {listing.health.value}"
            + (
                f" ({listing.held_by})"
                if listing.held_by and listing.health.value == "held back"
                else ""
            ),
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
            if state.cancel_requested is not None:
                lines.append(f"  cancel asked: {when(state.cancel_requested, now)}")
        if listing.pause is not None:
            pause = listing.pause
            lines.append(
                f"  paused:       since {when(pause.since, now)} by {pause.actor}, "
                + (f"until {when(pause.until, now)}" if pause.until else "until resumed")
            )
            if pause.reason:
                lines.append(f"  pause reason: {pause.reason}")
        if state is not None and state.run_now is not None and state.ongoing is None:
            lines.append(f"  run now:      asked {when(state.run_now, now)}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n" if blocks else "no jobs configured\n"


def listing_json(listings: Sequence[JobListing]) -> str:
    """One JSON object per line, per job."""
    return "".join(json.dumps(listing.as_dict(), sort_keys=True) + "\n" for listing in listings)


def history_text(app_name: str, page: LogPage) -> str:
    if not page.entries:
        return f"{app_name} has no runs in crontabber_log\n"
    blocks = []
    for entry in page.entries:
        run = run_dict(entry)
        seconds = run["duration_seconds"]
        started = entry.log_time - entry.duration if entry.duration is not None else None
        head = (
            f"{started or entry.log_time:%Y-%m-%d %H:%M:%S} UTC  "
            f"{f'{seconds:.1f}s' if seconds is not None else '-':>8}  {run['outcome']:<10} "
            f"{entry.trigger or '-'}  on {entry.host or '?'} pid {entry.pid or '?'}"
        )
        lines = [head]
        if run["error"]:
            lines.append(f"    {entry.exc_type}: {run['error']}")
        output = (entry.output or "").rstrip("\n").splitlines()
        if len(output) > OUTPUT_LINES:
            lines.append(f"    | ({len(output) - OUTPUT_LINES} lines before these: --json)")
        lines += ["    | " + line for line in output[-OUTPUT_LINES:]]
        blocks.append("\n".join(lines))
    shown = (
        f"the last {len(page.entries)} of {page.total}" if page.total > len(page.entries) else "all"
    )
    return f"{app_name}: {shown} runs, newest first\n" + "\n".join(blocks) + "\n"


def history_json(entries: Sequence[LogEntry]) -> str:
    """One JSON object per line, per run, newest first."""
    return "".join(json.dumps(run_dict(entry), sort_keys=True) + "\n" for entry in entries)


def audit_dict(entry: AuditEntry) -> dict[str, object]:
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "action": entry.action,
        "app_name": entry.app_name,
        "reason": entry.reason,
        "detail": entry.detail,
        "actor": entry.actor,
    }


def audit_text(entries: Sequence[AuditEntry]) -> str:
    if not entries:
        return "the audit log is empty\n"
    lines = []
    for entry in entries:
        line = f"{entry.at:%Y-%m-%d %H:%M:%S} UTC  {entry.action:<12} {entry.app_name}  by {entry.actor}"
        if entry.detail:
            line += f"  ({entry.detail})"
        if entry.reason:
            line += f": {entry.reason}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def audit_json(entries: Sequence[AuditEntry]) -> str:
    """One JSON object per line, per action, newest first."""
    return "".join(json.dumps(audit_dict(entry), sort_keys=True) + "\n" for entry in entries)
