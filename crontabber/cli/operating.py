"""The operators' commands: pause, resume, run now, cancel, a job's history, the audit log.

Each takes the :class:`~crontabber.config.settings.Settings` and the state store,
calls :mod:`crontabber.actions` or the store, prints one line (or the rows), and
returns the exit status; a refusal or a mistake is a CrontabberError (one line,
exit 1). Which switch calls which is :data:`crontabber.config.options.COMMAND_OPTIONS`'.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from typing import Any

    from crontabber.config.settings import Settings
    from crontabber.store.abc import StateStore

EXIT_OK = 0
HISTORY_RUNS = 20  # runs --history shows
AUDIT_ROWS = 100  # rows --audit-log shows


def _act(settings: Settings, store: StateStore, action: str, **extra: Any) -> int:
    """An operator's action on the job the command names, said in one line."""
    from crontabber import actions

    command = settings.command
    result = getattr(actions, action)(
        store,
        settings.specs,
        command.argument,
        actor=actions.command_line_actor(),
        reason=command.reason,
        **extra,
    )
    print(result.message)
    return EXIT_OK


def pause(settings: Settings, store: StateStore) -> int:
    return _act(settings, store, "pause_job", until=settings.command.until)


def resume(settings: Settings, store: StateStore) -> int:
    return _act(settings, store, "resume_job")


def run_now(settings: Settings, store: StateStore) -> int:
    return _act(settings, store, "run_now")


def cancel(settings: Settings, store: StateStore) -> int:
    return _act(settings, store, "cancel_run")


def history(settings: Settings, store: StateStore) -> int:
    """``--history NAME``: the job's last runs, newest first."""
    from crontabber.actions import job_or_ghost
    from crontabber.cli import printers

    app_name = job_or_ghost(store, settings.specs, settings.command.argument)  # or a ghost's
    store.ensure_schema()
    page = store.read_log_page(app_name, limit=HISTORY_RUNS)
    if settings.command.json:
        sys.stdout.write(printers.history_json(page.entries))
    else:
        sys.stdout.write(printers.history_text(app_name, page))
    return EXIT_OK


def audit_log(settings: Settings, store: StateStore) -> int:
    """``--audit-log``: who did what, newest first."""
    from crontabber.cli import printers

    entries = store.read_audit_log(limit=AUDIT_ROWS)
    if settings.command.json:
        sys.stdout.write(printers.audit_json(entries))
    else:
        sys.stdout.write(printers.audit_text(entries))
    return EXIT_OK
