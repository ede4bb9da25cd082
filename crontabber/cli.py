"""The ``crontabber`` command: parse, call the library, print, exit.

Exit statuses of a run: 0 every due job was attempted (whatever its outcome)
or nothing was due; 1 crontabber itself could not work (bad configuration,
unreachable database), with one line on stderr; 2 a due job was lost to a
simultaneous row-lock race; 3 a due job was running elsewhere (3 wins over 2).
Admin commands document their own statuses in the README.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence

from . import __version__
from .errors import ConfigError, CrontabberError
from .interrupts import Terminated

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:  # the CLI imports these lazily, to start fast
    from typing import Any

    from .config import Settings
    from .interrupts import NoInterrupts
    from .runner import Runner
    from .store import StateStore

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130  # SIGINT
EXIT_TERMINATED = 143  # SIGTERM
NAGIOS_UNKNOWN = 3
CONFIGTEST_MAX = 125
DAEMON_FLAG = "--daemon"

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


def job_to_run(settings: Settings) -> str | None:
    """The app name ``--job`` asks for (None: every job); refuses unknown and backfill jobs."""
    if settings.command.name != "job":
        return None
    from .admin import find_job

    spec = find_job(settings.specs, settings.command.argument)
    if spec.is_backfill:
        raise CrontabberError(
            f"{spec.app_name} is a backfill job: --job and --force do not run it, "
            "as that would break its series of dates; it runs on its schedule"
        )
    return spec.app_name


def build_runner(
    settings: Settings,
    store: StateStore,
    interrupts: NoInterrupts | None,
    on_failure: Callable[..., None] | None,
) -> Runner:
    """The runner of a run (or of every tick of a daemon) from the settings."""
    from .lease import LeasePolicy
    from .runner import Runner
    from .store import Holder

    holder = Holder.this_process(settings.host_name or None)
    return Runner(
        settings.specs,
        store,
        error_retry_time=settings.error_retry_time,
        lease=LeasePolicy(
            host=holder.host,
            heartbeat_interval=settings.heartbeat_interval,
            stale_intervals=settings.heartbeat_stale_intervals,
            max_age=settings.max_ongoing_age,
        ),
        holder=holder,
        on_failure=on_failure,
        interrupts=interrupts,
        log_retention=settings.log_retention,
        job_config=settings.job_config,
    )


def run_jobs(
    settings: Settings,
    store: StateStore,
    interrupts: NoInterrupts | None = None,
    only: str | None = None,
) -> int:
    """A run of every due job, or only of ``only`` (``--job``, resolved by :func:`job_to_run`)."""
    from . import error_reporting

    command = settings.command
    reporter = error_reporting.failure_reporter(settings.sentry_dsn)
    runner = build_runner(settings, store, interrupts, reporter)
    try:
        report = runner.run(only=only, force=command.force and only is not None)
    finally:
        if reporter is not None:
            error_reporting.flush()
    if only is not None and not report.jobs:
        print(f"{only} is not due; use --force to run it now")
    if settings.problems and report.exit_status == EXIT_OK:
        return EXIT_ERROR  # the others ran; the misconfigured ones were reported
    return report.exit_status


def daemon(settings: Settings, store: StateStore, argv: Sequence[str]) -> int:
    """``--daemon``: tick until stopped; SIGHUP reads ``argv``'s configuration again."""
    from . import config, error_reporting
    from .daemon import run_daemon, start_workers

    reporter = error_reporting.failure_reporter(settings.sentry_dsn)

    def rebuild(signals: NoInterrupts) -> Runner:
        fresh = config.settings_from(config.read_config(argv))
        fatal = [problem for problem in fresh.problems if not problem.of_jobs_only]
        if fatal:
            raise ConfigError(fatal[0].message)
        if fresh.database_url != settings.database_url:
            log.warning("SIGHUP: a new database_url takes a restart; the daemon keeps its own")
        return build_runner(without_misconfigured_jobs(fresh), store, signals, reporter)

    server = None
    if settings.web_port is not None:
        from . import web

        web.check_bind(settings.web_host, settings.web_auth_token)
        server = web.start_server(web_app(settings), settings.web_host, settings.web_port)
        log.info("serving the status page on %s/", server.url)
    # More workers are daemons of their own (with one worker and no page), so that
    # independent jobs run at the same time, each through the claim.
    workers = start_workers(
        [
            sys.executable,
            "-m",
            "crontabber",
            *argv,
            DAEMON_FLAG,
            "--daemon.workers=1",
            "--web.port=",
        ],
        settings.daemon_workers - 1,
    )
    try:
        return run_daemon(
            lambda signals: build_runner(settings, store, signals, reporter),
            poll_seconds=settings.daemon_poll.total_seconds(),
            shutdown_grace=settings.daemon_shutdown_grace.total_seconds(),
            rebuild=rebuild,
            on_stop=error_reporting.flush if reporter is not None else None,
            workers=workers,
        )
    finally:
        if server is not None:
            server.stop()


def web_app(settings: Settings) -> Any:
    from . import web

    return web.create_app(
        settings.database_url,
        settings.specs,
        auth_token=settings.web_auth_token,
        max_ongoing_age=settings.max_ongoing_age,
        problems=[problem.message for problem in settings.problems],
    )


def serve(settings: Settings) -> int:
    """``--serve``: the status page, JSON API and metrics, until stopped."""
    from . import web

    return web.serve(
        settings.database_url,
        settings.specs,
        host=settings.web_host,
        port=settings.web_port if settings.web_port is not None else web.DEFAULT_PORT,
        auth_token=settings.web_auth_token,
        max_ongoing_age=settings.max_ongoing_age,
        problems=[problem.message for problem in settings.problems],
    )


def list_jobs(settings: Settings, store: StateStore) -> int:
    from . import admin, printers

    snapshot = store.read_snapshot()
    listings = admin.list_jobs(settings.specs, snapshot.states)
    if settings.command.json:
        sys.stdout.write(printers.listing_json(listings))
    else:
        sys.stdout.write(printers.listing_text(listings, snapshot.now))
        for problem in settings.problems:
            print(f"misconfigured: {problem.message}")
    return EXIT_OK


def reset_job(settings: Settings, store: StateStore) -> int:
    from . import admin

    result = admin.reset_job(
        store, settings.specs, settings.command.argument, force=settings.command.force
    )
    print(result.message)
    return EXIT_OK


def audit_ghosts(settings: Settings, store: StateStore) -> int:
    from . import admin

    if settings.command.force:
        if settings.problems:
            raise ConfigError(
                "not removing ghosts while jobs are misconfigured: a job that does not "
                "import looks like a ghost; fix the configuration first (--configtest)"
            )
        for result in admin.remove_ghosts(store, settings.specs):
            print(f"removed {result.app_name}" if result.was_reset else result.message)
        return EXIT_OK
    for name in admin.audit_ghosts(settings.specs, store.load_states()):
        print(name)
    return EXIT_OK


def nagios(settings: Settings, store: StateStore) -> int:
    from . import admin

    snapshot = store.read_snapshot()
    verdict = admin.nagios(
        settings.specs,
        snapshot.states,
        snapshot.now,
        settings.max_ongoing_age,
        misconfigured=[problem.message for problem in settings.problems],
    )
    print(verdict.line)
    return verdict.status


def graph(settings: Settings, store: StateStore) -> int:
    from . import admin

    sys.stdout.write(admin.graph_dot(settings.specs, store.load_states()))
    return EXIT_OK


def migrate(settings: Settings, store: StateStore) -> int:
    before, after = store.migrate()
    if before == after:
        print(f"the state database is up to date (schema revision {after})")
    else:
        print(f"migrated the state database from schema revision {before or 'none'} to {after}")
    return EXIT_OK


COMMANDS_WITH_STORE: dict[str | None, Callable[..., int]] = {
    None: run_jobs,
    "job": run_jobs,
    "list-jobs": list_jobs,
    "reset-job": reset_job,
    "audit-ghosts": audit_ghosts,
    "nagios": nagios,
    "graph": graph,
    "migrate": migrate,
}


def configtest(settings: Settings) -> int:
    """One line per problem; the exit status is the number of misconfigured jobs."""
    for problem in settings.problems:
        print(problem.message)
    if not settings.problems:
        print(f"configuration OK: {len(settings.specs)} jobs")
        return EXIT_OK
    misconfigured = {subject for problem in settings.problems for subject in problem.subjects}
    # An exit status is a byte: 256 problems would read as 0. 125 and up mean "that many
    # or more" (126 and up are the shell's own).
    return min(max(len(misconfigured), 1), CONFIGTEST_MAX)


def sentrytest(settings: Settings) -> int:
    from . import error_reporting

    accepted, message = error_reporting.send_test_event(settings.sentry_dsn)
    print(message)
    return EXIT_OK if accepted else EXIT_ERROR


def run(argv: Sequence[str]) -> int:
    from . import config

    # --daemon is read here: configman cannot have both an option and a namespace
    # (daemon.poll_seconds, ...) of one name.
    daemon_mode = DAEMON_FLAG in argv
    argv = [arg for arg in argv if arg != DAEMON_FLAG]
    # A tick from crontab reads its file without configman when it can; a daemon reads
    # it once, through configman, and again on SIGHUP.
    settings = config.load_settings(argv, plain=not daemon_mode)
    if daemon_mode and settings.command.name is not None:
        raise ConfigError(f"choose one command, not --{settings.command.name} and {DAEMON_FLAG}")
    if settings.command.name == "configtest":
        return configtest(settings)
    fatal = [problem for problem in settings.problems if not problem.of_jobs_only]
    if fatal:
        raise ConfigError(fatal[0].message)
    configure_logging(settings.log_level, settings.log_file)
    for message in settings.warnings:
        log.warning("%s", message)
    settings = without_misconfigured_jobs(settings)
    if settings.command.name == "sentrytest":
        return sentrytest(settings)
    if settings.command.name == "serve":
        return serve(settings)  # a read-only store of its own
    only = job_to_run(settings)  # a bad --job is a mistake found before the database is touched

    from .interrupts import SignalInterrupts

    if daemon_mode:
        return _with_store(settings, daemon, argv)
    command = COMMANDS_WITH_STORE[settings.command.name]
    if command is not run_jobs:
        return _with_store(settings, command)
    # From here on a SIGTERM or SIGINT is never lost: it interrupts the running job,
    # or waits for the next safe point, at the latest the end of the run.
    with SignalInterrupts() as interrupts:
        return _with_store(settings, run_jobs, interrupts, only)


def without_misconfigured_jobs(settings: Settings) -> Settings:
    """The settings with only the jobs that can run: a misconfigured job (a module
    that does not import, a bad schedule, a cycle...) is reported, with the jobs
    that depend on it, and the others run; every admin command still works."""
    if not settings.problems:
        return settings
    from .jobs import usable_jobs
    from .record import replace

    misconfigured = {subject for problem in settings.problems for subject in problem.subjects}
    specs, held_back = usable_jobs(settings.specs, misconfigured)
    for problem in settings.problems:
        log.error("misconfigured: %s", problem.message)
    for spec in held_back:
        log.error("held back: %s depends on a misconfigured job", spec.app_name)
    return replace(settings, specs=tuple(specs))


def _with_store(settings: Settings, command: Callable[..., int], *args: object) -> int:
    from .store import open_store

    # The schema is checked with the first read (and migrated if need be).
    store = open_store(
        settings.database_url, retry_for=settings.state_retry, auto_migrate=settings.auto_migrate
    )
    try:
        return command(settings, store, *args)
    finally:
        store.close()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--version" in argv or "-v" in argv:
        print(f"crontabber {__version__}")
        return EXIT_OK
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
    from .database import describe_error

    return f"the state database failed: {describe_error(exc)}"


def entry_point() -> None:
    try:
        status = main()
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. `crontabber --help | head`
        status = 0
    sys.exit(status)
