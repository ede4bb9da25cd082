"""The admin commands and the runs the ``crontabber`` command makes: one function each.

Each takes the :class:`~crontabber.config.settings.Settings` (and the state store
when its row in :data:`crontabber.config.options.COMMAND_OPTIONS` says it needs
one), calls the library, prints, and returns the exit status. Which function a
switch calls is that table's; :mod:`crontabber.cli.entry` reads it.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from collections.abc import Callable, Sequence

from crontabber.cli.operating import (  # noqa: F401 (the operators' commands, for COMMAND_OPTIONS)
    audit_log,
    cancel,
    history,
    pause,
    resume,
    run_now,
)
from crontabber.errors import ConfigError, CrontabberError

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:  # the CLI imports these lazily, to start fast
    from typing import Any

    from crontabber.config.settings import Settings
    from crontabber.run.interrupts import NoInterrupts
    from crontabber.run.runner import Runner
    from crontabber.store.abc import StateStore

EXIT_OK = 0
EXIT_ERROR = 1
DELIVER_EVERY = 30.0  # seconds between a --serve's deliveries of pending notifications
EVENT_ROWS = 200  # the newest notifications --list-jobs --json shows, with their jobs
CONFIGTEST_MAX = 125
DAEMON_FLAG = "--daemon"

log = logging.getLogger("crontabber")


def job_to_run(settings: Settings) -> str | None:
    """The app name ``--job`` asks for (None: every job); refuses unknown and backfill jobs."""
    if settings.command.name != "job":
        return None
    from crontabber.status import find_job

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
    from crontabber.run.interrupts import SignalInterrupts
    from crontabber.run.runner import Runner
    from crontabber.store.lease import LeasePolicy
    from crontabber.store.records import Holder

    holder = Holder.this_process(settings.host_name or None)
    if interrupts is not None:  # a stop signal is heard through the retries too
        store.give_up = interrupts.give_up  # type: ignore[attr-defined]
    notifier = None
    if settings.notify is not None or any(spec.policy.ping_url for spec in settings.specs):
        from crontabber.notify.send import NotifySettings
        from crontabber.notify.watch import Notifier

        notifier = Notifier(store, settings.notify or NotifySettings(), host=holder.host)
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
        run_output_bytes=settings.run_output_bytes,
        notifier=notifier,
        # In the command's main thread (signals installed) a run's output is taken at
        # its file descriptors, so that what its child processes print is kept too.
        capture_fds=isinstance(interrupts, SignalInterrupts),
        isolate=settings.isolate_runs,
    )


def run_jobs(
    settings: Settings,
    store: StateStore,
    interrupts: NoInterrupts | None = None,
    only: str | None = None,
) -> int:
    """A run of every due job, or only of ``only`` (``--job``, resolved by :func:`job_to_run`)."""
    from crontabber.run import error_reporting
    from crontabber.run.reports import Result

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
    paused = [job for job in report.jobs if job.app_name == only and job.reason]
    if only is not None and report.with_result(Result.PAUSED) and paused:
        print(f"{only} is {paused[0].reason}: not run (--resume it first)")
        return EXIT_ERROR
    if settings.problems and report.exit_status == EXIT_OK:
        return EXIT_ERROR  # the others ran; the misconfigured ones were reported
    return report.exit_status


def daemon(settings: Settings, store: StateStore, argv: Sequence[str]) -> int:
    """``--daemon``: tick until stopped; SIGHUP reads ``argv``'s configuration again."""
    from crontabber.config import configman_edge as config
    from crontabber.run import error_reporting
    from crontabber.run.daemon import Liveness, Workers, run_daemon
    from crontabber.run.isolation import end_with_parent

    end_with_parent()  # a worker daemon: it ends with the daemon that started it

    reporter = error_reporting.failure_reporter(settings.sentry_dsn)

    def rebuild(signals: NoInterrupts) -> Runner:
        fresh = config.settings_from(config.read_config(argv))
        if fresh.problems:  # the old configuration stays whole, rather than lose a job
            raise ConfigError(fresh.problems[0].message)
        for message in fresh.warnings:
            log.warning("SIGHUP: %s", message)
        if fresh.database_url != settings.database_url:
            log.warning("SIGHUP: a new database_url takes a restart; the daemon keeps its own")
        return build_runner(without_misconfigured_jobs(fresh), store, signals, reporter)

    liveness = Liveness.of(
        settings.daemon_poll.total_seconds(),
        settings.heartbeat_interval.total_seconds(),
        (settings.state_retry + (settings.state_timeout or dt.timedelta(0))).total_seconds(),
    )
    server = None
    if settings.web_port is not None:
        web = web_module()
        web.check_bind(settings.web_host, settings.web_auth_token)
        server = web.start_server(web_app(settings, liveness), settings.web_host, settings.web_port)
        log.info("serving the status page on %s/", server.url)
    # More workers are daemons of their own (with one worker and no page), so that
    # independent jobs run at the same time, each through the claim.
    workers = Workers(
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
            liveness=liveness,
        )
    finally:
        if server is not None:
            server.stop()


def web_module() -> Any:
    """:mod:`crontabber.web`, or a ConfigError naming the extra to install."""
    try:
        from crontabber import web
    except ImportError as exc:
        raise ConfigError(
            "the status page needs the web extra: pip install 'crontabber-ng[web]' "
            f"(missing: {exc.name})"
        ) from None
    return web


def web_app(settings: Settings, liveness: Callable[[], str | None] | None = None) -> Any:
    web = web_module()

    return web.create_app(
        settings.database_url,
        settings.specs,
        auth_token=settings.web_auth_token,
        max_ongoing_age=settings.max_ongoing_age,
        problems=[problem.message for problem in settings.problems],
        liveness=liveness,
    )


def serve(settings: Settings) -> int:
    """``--serve``: the status page, JSON API and metrics, until stopped; with
    ``[notify]``, it delivers pending notifications every half minute too."""
    web = web_module()

    every, store = None, None
    if settings.notify is not None and settings.notify.sinks:
        from crontabber.notify.watch import Notifier
        from crontabber.store import open_store
        from crontabber.store.records import Holder

        store = open_store(settings.database_url, auto_migrate=False)
        host = Holder.this_process(settings.host_name or None).host
        every = (DELIVER_EVERY, Notifier(store, settings.notify, host=host).deliver)
    try:
        return _serve(settings, web, every)
    finally:
        if store is not None:
            store.close()


def _serve(settings: Settings, web: Any, every: Any) -> int:
    return web.serve(
        settings.database_url,
        settings.specs,
        host=settings.web_host,
        port=settings.web_port if settings.web_port is not None else web.DEFAULT_PORT,
        auth_token=settings.web_auth_token,
        max_ongoing_age=settings.max_ongoing_age,
        problems=[problem.message for problem in settings.problems],
        every=every,
    )


def list_jobs(settings: Settings, store: StateStore) -> int:
    from crontabber import status
    from crontabber.cli import printers

    snapshot = store.read_snapshot()
    events = store.read_notifications(limit=EVENT_ROWS) if settings.command.json else ()
    listings = status.list_jobs(
        settings.specs, snapshot.states, snapshot.paused, events, snapshot.now
    )
    if settings.command.json:
        sys.stdout.write(printers.listing_json(listings))
    else:
        sys.stdout.write(printers.listing_text(listings, snapshot.now))
        for problem in settings.problems:
            print(f"misconfigured: {problem.message}")
    return EXIT_OK


def reset_job(settings: Settings, store: StateStore) -> int:
    from crontabber import actions

    result = actions.reset_job(
        store,
        settings.specs,
        settings.command.argument,
        force=settings.command.force,
        actor=actions.command_line_actor(),
        reason=settings.command.reason,
    )
    print(result.message)
    return EXIT_OK


def audit_ghosts(settings: Settings, store: StateStore) -> int:
    from crontabber import actions, status

    if settings.command.force:
        if settings.problems:
            raise ConfigError(
                "not removing ghosts while jobs are misconfigured: a job that does not "
                "import looks like a ghost; fix the configuration first (--configtest)"
            )
        for result in actions.remove_ghosts(
            store, settings.specs, actor=actions.command_line_actor()
        ):
            print(f"removed {result.app_name}" if result.was_reset else result.message)
        return EXIT_OK
    for name in status.audit_ghosts(settings.specs, store.load_states()):
        print(name)
    return EXIT_OK


def nagios(settings: Settings, store: StateStore) -> int:
    from crontabber import status

    snapshot = store.read_snapshot()
    verdict = status.nagios(
        settings.specs,
        snapshot.states,
        snapshot.now,
        settings.max_ongoing_age,
        misconfigured=[problem.message for problem in settings.problems],
    )
    print(verdict.line)
    return verdict.status


def graph(settings: Settings, store: StateStore) -> int:
    from crontabber import status

    sys.stdout.write(status.graph_dot(settings.specs, store.load_states()))
    return EXIT_OK


def migrate(settings: Settings, store: StateStore) -> int:
    before, after = store.migrate()
    if before == after:
        print(f"the state database is up to date (schema revision {after})")
    else:
        print(f"migrated the state database from schema revision {before or 'none'} to {after}")
    return EXIT_OK


def configtest(settings: Settings) -> int:
    """One line per problem; the exit status is the number of misconfigured jobs (at
    least 1 when only ``[notify]`` is wrong)."""
    for problem in settings.problems:
        print(problem.message)
    notify_problems = []
    if settings.notify is not None:
        from crontabber.notify.send import check

        notify_problems = check(settings.notify, connect=True)
    for line in notify_problems:
        print(line)
    if not settings.problems and notify_problems:
        return EXIT_ERROR
    if not settings.problems:
        from crontabber.words import plural  # here: a tick does not import it

        print(f"configuration OK: {plural(len(settings.specs), 'job')}")
        return EXIT_OK
    misconfigured = {subject for problem in settings.problems for subject in problem.subjects}
    # An exit status is a byte: 256 problems would read as 0. 125 and up mean "that many
    # or more" (126 and up are the shell's own).
    return min(max(len(misconfigured), 1), CONFIGTEST_MAX)


def sentrytest(settings: Settings) -> int:
    from crontabber.run import error_reporting

    accepted, message = error_reporting.send_test_event(settings.sentry_dsn)
    print(message)
    return EXIT_OK if accepted else EXIT_ERROR


def without_misconfigured_jobs(settings: Settings) -> Settings:
    """The settings with only the jobs that can run: a misconfigured job (a module
    that does not import, a bad schedule, a cycle...) is reported, with the jobs
    that depend on it, and the others run; every admin command still works."""
    if not settings.problems:
        return settings
    from crontabber.jobs.spec import usable_jobs
    from crontabber.record import replace

    misconfigured = {subject for problem in settings.problems for subject in problem.subjects}
    specs, held_back = usable_jobs(settings.specs, misconfigured)
    for problem in settings.problems:
        log.error("misconfigured: %s", problem.message)
    for spec in held_back:
        log.error("held back: %s depends on a misconfigured job", spec.app_name)
    return replace(settings, specs=tuple(specs))
