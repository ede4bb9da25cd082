"""The ``crontabber`` command: parse, call the library, print, exit.

Exit statuses of a run: 0 every due job was attempted (whatever its outcome)
or nothing was due; 1 crontabber itself could not work (bad configuration,
unreachable database), with one line on stderr; 2 a due job was lost to a
simultaneous row-lock race; 3 a due job was running elsewhere (3 wins over 2).
Admin commands document their own statuses in the README.

Which function serves each admin command, and whether it needs the state
store, is one table: :data:`crontabber.config.options.COMMAND_OPTIONS`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence

from crontabber import __version__
from crontabber.cli import commands
from crontabber.cli.commands import DAEMON_FLAG, EXIT_ERROR, EXIT_OK
from crontabber.errors import ConfigError, CrontabberError, LeaseLost, Terminated

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:  # the CLI imports these lazily, to start fast
    from crontabber.config.settings import Settings

EXIT_INTERRUPTED = 130  # SIGINT
EXIT_TERMINATED = 143  # SIGTERM
EXIT_LEASE_LOST = 4  # a job's lease was lost while it ran: it was stopped
NAGIOS_UNKNOWN = 3

log = logging.getLogger("crontabber")


def configure_logging(level: str, log_file: str = "") -> None:
    """stderr gets ``level``, or, when it is empty, INFO on a terminal and WARNING
    elsewhere: a run from cron in which nothing failed prints nothing, so cron sends
    no mail. ``log_file`` gets the whole log too (at ``level``, or INFO)."""
    numeric = logging.getLevelName(level or "INFO")
    if not isinstance(numeric, int):
        raise ConfigError(f"bad logging.level {level!r}: use DEBUG, INFO, WARNING or ERROR")
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(numeric if level or sys.stderr.isatty() else logging.WARNING)
    handlers: list[logging.Handler] = [stderr]
    if log_file:
        try:
            to_file = logging.FileHandler(log_file, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write logging.file {log_file!r}: {exc.strerror}") from None
        to_file.setLevel(numeric)
        handlers.append(to_file)
    for handler in handlers:
        handler.setFormatter(formatter)
    logging.basicConfig(level=numeric, handlers=handlers, force=True)
    # Alembic narrates every step at INFO; crontabber logs what a migration did. An
    # unreachable Sentry makes urllib3 and sentry-sdk warn several times per event:
    # crontabber says it once.
    logging.getLogger("alembic").setLevel(max(numeric, logging.WARNING))
    for chatty in ("urllib3", "sentry_sdk"):
        logging.getLogger(chatty).setLevel(logging.ERROR)


def run(argv: Sequence[str]) -> int:
    from crontabber.config import configman_edge as config
    from crontabber.config.options import COMMAND_SWITCHES

    # --daemon is read here: configman cannot have both an option and a namespace
    # (daemon.poll_seconds, ...) of one name.
    daemon_mode = DAEMON_FLAG in argv
    argv = [arg for arg in argv if arg != DAEMON_FLAG]
    # A tick from crontab reads its file without configman when it can; a daemon reads
    # it once, through configman, and again on SIGHUP.
    settings = config.load_settings(argv, plain=not daemon_mode)
    name = settings.command.name
    if daemon_mode and name is not None:
        raise ConfigError(f"choose one command, not --{name} and {DAEMON_FLAG}")
    if name == "configtest":  # before the checks below: it is the command that reports them
        return commands.configtest(settings)
    fatal = [problem for problem in settings.problems if not problem.of_jobs_only]
    if fatal:
        raise ConfigError(fatal[0].message)
    configure_logging(settings.log_level, settings.log_file)
    for message in settings.warnings:
        log.warning("%s", message)
    settings = commands.without_misconfigured_jobs(settings)
    switch = COMMAND_SWITCHES.get(name)  # None: a run of the due jobs
    handler: Callable[..., int] = getattr(commands, switch.handler) if switch else commands.run_jobs
    if switch is not None and not switch.needs_store:
        return handler(settings)  # --serve opens a read-only store of its own
    only = commands.job_to_run(settings)  # a bad --job is found before the database is touched

    from crontabber.run.interrupts import SignalInterrupts

    if daemon_mode:
        return _with_store(settings, commands.daemon, argv)
    if handler is not commands.run_jobs:
        return _with_store(settings, handler)
    # From here on a SIGTERM or SIGINT is never lost: it interrupts the running job,
    # or waits for the next safe point, at the latest the end of the run.
    with SignalInterrupts() as interrupts:
        return _with_store(settings, commands.run_jobs, interrupts, only)


def _with_store(settings: Settings, command: Callable[..., int], *args: object) -> int:
    from crontabber.store import open_store

    # The schema is checked with the first read (and migrated if need be).
    store = open_store(
        settings.database_url,
        retry_for=settings.state_retry,
        timeout=settings.state_timeout,
        auto_migrate=settings.auto_migrate,
    )
    try:
        return command(settings, store, *args)
    finally:
        store.close()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    argv = ["--help" if arg == "-h" else arg for arg in argv]  # configman knows --help only
    if "--version" in argv or "-v" in argv:
        print(f"crontabber {__version__}")
        return EXIT_OK
    if any(arg == "--init" or arg.startswith("--init=") for arg in argv):
        from crontabber.cli.starter import init, init_argument

        status, line = init(init_argument(argv) or "")
        print(line, file=sys.stderr if status else sys.stdout)
        return status
    nagios_mode = "--nagios" in argv or "-n" in argv
    try:
        return run(argv)
    except CrontabberError as exc:
        if nagios_mode:
            print(f"UNKNOWN - {exc}")
            return NAGIOS_UNKNOWN
        print(f"crontabber: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("crontabber: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except LeaseLost as exc:
        print(f"crontabber: {exc}; stopped it (another host may run it now)", file=sys.stderr)
        return EXIT_LEASE_LOST
    except Terminated as exc:
        print(f"crontabber: {exc}", file=sys.stderr)
        return EXIT_TERMINATED
    except Exception as exc:
        database_error = _database_error_line(exc)
        if database_error is None:
            raise  # a bug: the traceback is wanted
        if nagios_mode:
            print(f"UNKNOWN - {database_error}")
            return NAGIOS_UNKNOWN
        print(f"crontabber: {database_error}", file=sys.stderr)
        return EXIT_ERROR


def _database_error_line(exc: Exception) -> str | None:
    """One line for an error the state database or its driver raised, or None for
    anything else. Drivers' own errors escape SQLAlchemy's wrapping in places (a
    connection that dies while the pool resets it), so they are recognised too."""
    kinds: list[type[BaseException]] = []
    if "sqlalchemy" in sys.modules:
        from sqlalchemy.exc import SQLAlchemyError

        kinds.append(SQLAlchemyError)
    if "psycopg2" in sys.modules:
        import psycopg2

        kinds.append(psycopg2.Error)
    if "sqlite3" in sys.modules:
        import sqlite3

        kinds.append(sqlite3.Error)
    if not isinstance(exc, tuple(kinds)):
        return None
    from crontabber.db.retry import describe_error

    return f"the state database failed: {describe_error(exc)}"


def entry_point() -> None:
    try:
        status = main()
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. `crontabber --help | head`
        status = 0
    sys.exit(status)
