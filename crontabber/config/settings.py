"""Everything a run needs, as plain values: :class:`Settings`, and how they are made.

:func:`settings_from` turns what was read (configman's mapping, or the plain
reader's values: a :class:`RawConfig`) into :class:`Settings`, whose job specs,
database URL and durations are what the runner and the state store take.
Nothing past this module sees configman; reading is
:mod:`crontabber.config.configman_edge`'s and :mod:`crontabber.config.plain`'s.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from crontabber.config.job_config import apply_job_section_options, local_keys
from crontabber.config.jobs_option import JobProblem, JobsSetting, namespace_name
from crontabber.config.options import COMMAND_SWITCHES
from crontabber.config.state_database import EARLY_NAMES, database_url, postgres_values
from crontabber.errors import ConfigError
from crontabber.jobs.policy import POLICY_OPTIONS, policy_from
from crontabber.jobs.schedule import UTC, parse_zone
from crontabber.jobs.spec import JobSpec, graph_problems, spec_for
from crontabber.record import field, record

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from typing import Any


@record
class Command:
    """The admin command asked for on the command line (``name`` None: a normal run)."""

    name: str | None = None
    argument: str = ""
    force: bool = False
    json: bool = False
    reason: str = ""  # --reason: why, for the audit log
    until: str = ""  # --until, as given


@record
class Settings:
    """Everything a run needs, as plain values."""

    specs: tuple[JobSpec, ...]
    database_url: str
    error_retry_time: dt.timedelta = dt.timedelta(seconds=300)
    max_ongoing_age: dt.timedelta = dt.timedelta(hours=12)
    log_level: str = ""  # empty: INFO on a terminal, else WARNING
    log_file: str = ""
    log_retention: dt.timedelta | None = dt.timedelta(days=90)  # None: keep every log row
    run_output_bytes: int = 64 * 1024  # of each run's output kept in crontabber_log
    isolate_runs: bool = True  # each run in a child process (crontabber.run.isolation)
    heartbeat_interval: dt.timedelta = dt.timedelta(seconds=30)
    heartbeat_stale_intervals: int = 3
    host_name: str = ""
    state_retry: dt.timedelta = dt.timedelta(seconds=60)
    state_timeout: dt.timedelta | None = dt.timedelta(seconds=10)  # None: no deadline
    auto_migrate: bool = True
    daemon_poll: dt.timedelta = dt.timedelta(seconds=10)
    daemon_shutdown_grace: dt.timedelta = dt.timedelta(seconds=30)
    daemon_workers: int = 1
    web_host: str = "127.0.0.1"
    web_port: int | None = None  # None: 8080 for --serve, and no page for --daemon
    web_auth_token: str = ""
    sentry_dsn: str = ""
    # [notify] as crontabber.notify.send.NotifySettings; None: nothing configured there.
    notify: Any = None
    command: Command = field(default_factory=Command)
    problems: tuple[JobProblem, ...] = field(default=())
    # Said once as a WARNING, not stopping the run: unknown options without --admin.strict.
    warnings: tuple[str, ...] = field(default=())
    # configman's mapping: each job's options acquire from it through weak references.
    raw_config: Any = field(default=None, compare=False, repr=False)
    # Read without configman: what each job sees as ``self.config``, made when it runs
    # (None: each spec's own ``config``).
    job_config: Callable[[JobSpec], Any] | None = field(default=None, compare=False, repr=False)


@record
class RawConfig:
    """What configman read: its mapping, the config file, options it did not know,
    and whether ``--admin.strict`` makes those an error."""

    config: Any
    conf_path: str | None
    unknown_options: tuple[str, ...] = ()
    strict: bool = False
    # False: :mod:`crontabber.config.plain` read it, and ``config`` is its plain Values.
    from_configman: bool = True
    # The [resource] [[postgresql]] and [secrets] [[postgresql]] keys the file sets, as
    # text, by dotted name (see crontabber.config.state_database).
    postgres_keys: tuple[tuple[str, str], ...] = ()


def settings_from(raw: RawConfig) -> Settings:
    """Plain settings from configman's mapping; job problems are kept, not raised."""
    config = raw.config
    jobs_setting = config.crontabber.jobs
    if not isinstance(jobs_setting, JobsSetting):
        jobs_setting = JobsSetting(jobs_setting or "")
    problems = list(jobs_setting.problems)
    try:
        default_zone = parse_zone(config.crontabber.timezone)
    except ConfigError as exc:
        problems.insert(0, JobProblem((), f"crontabber.timezone: {exc}", of_jobs_only=False))
        default_zone = UTC
    specs = _job_specs(raw, jobs_setting, default_zone, problems)
    command = command_from(config)
    unknown = unknown_options(raw, {namespace_name(line) for line, _ in jobs_setting.jobs})
    given = dict(raw.postgres_keys)
    state_url = database_url(config, raw.conf_path, given)
    fill_in_early_names(config, given)
    warnings_: tuple[str, ...] = ()
    if raw.strict or command.name == "configtest":
        because = " (--admin.strict)" if raw.strict else ""
        problems.extend(
            JobProblem(
                (name,),
                f"unknown option {name!r} in the configuration{because}",
                of_jobs_only=False,
            )
            for name in unknown
        )
    else:
        warnings_ += tuple(
            f"unknown option {name!r} in the configuration: ignored "
            "(--admin.strict makes it an error)"
            for name in unknown
        )
    problems.extend(JobProblem(subjects, message) for subjects, message in graph_problems(specs))
    if config.crontabber.error_retry_time < 0:
        raise ConfigError("crontabber.error_retry_time must not be negative")
    if config.crontabber.heartbeat_interval <= 0 or config.crontabber.heartbeat_stale_intervals < 1:
        raise ConfigError(
            "crontabber.heartbeat_interval must be positive and heartbeat_stale_intervals at least 1"
        )
    if config.crontabber.log_retention_days < 0:
        raise ConfigError("crontabber.log_retention_days must not be negative (0 keeps every row)")
    if config.crontabber.run_output_kb < 0:
        raise ConfigError("crontabber.run_output_kb must not be negative (0 keeps no output)")
    if config.crontabber.state_timeout_seconds < 0:
        raise ConfigError("crontabber.state_timeout_seconds must not be negative (0: no limit)")
    if config.crontabber.max_ongoing_age_hours <= 0:
        raise ConfigError("crontabber.max_ongoing_age_hours must be positive")
    return Settings(
        command=command,
        warnings=warnings_,
        sentry_dsn=config.sentry.dsn,
        auto_migrate=bool(config.crontabber.auto_migrate),
        daemon_poll=dt.timedelta(seconds=daemon_seconds(config, "poll_seconds")),
        web_host=str(config.web.host or "127.0.0.1"),
        web_port=web_port(config),
        web_auth_token=str(config.web.auth_token or ""),
        daemon_shutdown_grace=dt.timedelta(
            seconds=daemon_seconds(config, "shutdown_grace_seconds")
        ),
        daemon_workers=daemon_workers(config),
        heartbeat_interval=dt.timedelta(seconds=config.crontabber.heartbeat_interval),
        heartbeat_stale_intervals=config.crontabber.heartbeat_stale_intervals,
        host_name=config.crontabber.host_name,
        state_retry=dt.timedelta(seconds=config.crontabber.state_retry_seconds),
        state_timeout=optional_duration(seconds=config.crontabber.state_timeout_seconds),
        specs=tuple(specs),
        database_url=state_url,
        error_retry_time=dt.timedelta(seconds=config.crontabber.error_retry_time),
        max_ongoing_age=dt.timedelta(hours=config.crontabber.max_ongoing_age_hours),
        log_level=str(config.logging.level).upper(),
        log_file=str(config.logging.file or ""),
        log_retention=optional_duration(days=config.crontabber.log_retention_days),
        run_output_bytes=int(config.crontabber.run_output_kb) * 1024,
        isolate_runs=bool(config.crontabber.isolate_runs),
        notify=notify_settings(config),
        problems=tuple(problems),
        raw_config=config,
    )


def _job_specs(
    raw: RawConfig, jobs_setting: JobsSetting, default_zone: dt.tzinfo, problems: list[JobProblem]
) -> list[JobSpec]:
    """The jobs' specs, each with its section and policy; a bad job is a problem."""
    config = raw.config
    defaults = policy_from(
        {
            name: config.crontabber.get(name)
            for name in POLICY_OPTIONS
            if name not in ("exclude", "ping_url")
        },
        prefix="crontabber.",
    )
    specs = []
    # Read without configman, no job has a section: what a job sees is made when it runs.
    sections = set(local_keys(config.crontabber)) if raw.from_configman else set()
    for line, app_class in jobs_setting.jobs:
        section = None
        if raw.from_configman:
            name = namespace_name(line)
            if name not in sections:  # a job without options of its own
                config.crontabber[name] = type(config)()
                sections.add(name)
            section = config.crontabber[name]
            apply_job_section_options(app_class, section)
        try:
            policy = (
                defaults
                if section is None
                else policy_from(_own(section), defaults, prefix=f"{namespace_name(line)}.")
            )
            specs.append(spec_for(line, app_class, section, default_zone, policy))
        except ConfigError as exc:
            problems.append(JobProblem((line.class_path,), str(exc)))
    return specs


NOTIFY_WHERE = ("webhook_url", "smtp_host", "email_to", "tick_ping_url")  # any set: notify


def notify_settings(config: Any) -> Any:
    """``[notify]`` read (crontabber.notify.send, imported only when something is
    configured there); None when nothing is."""
    section = config.get("notify") or {}
    if not any(section.get(name) for name in NOTIFY_WHERE):
        return None
    from crontabber.notify.send import notify_settings_from

    return notify_settings_from(section)


def _own(section: Any) -> dict[str, Any]:
    """The policy options a job's section gives itself (its own keys, not acquired)."""
    own = set(local_keys(section))
    return {name: section[name] for name in POLICY_OPTIONS if name in own}


def optional_duration(**amount: float) -> dt.timedelta | None:
    """A duration option where 0 means none (``optional_duration(days=90)``)."""
    return dt.timedelta(**amount) if any(amount.values()) else None


def unknown_options(raw: RawConfig, configured: set[str]) -> list[str]:
    """The unknown options worth a word: those of a job not in the jobs list are harmless."""
    names = []
    for name in raw.unknown_options:
        if name in EARLY_NAMES:
            continue  # read: see crontabber.config.state_database
        namespace = name.split(".")[1] if name.startswith("crontabber.class-") else None
        if namespace is None or namespace in configured:
            names.append(name)
    return names


def command_from(config: Any) -> Command:
    """The one admin command asked for; asking for two is a ConfigError."""
    asked = [name for name in COMMAND_SWITCHES if config[name]]
    if len(asked) > 1:
        raise ConfigError(f"choose one command, not {' and '.join('--' + name for name in asked)}")
    name = asked[0] if asked else None
    if config.json and name not in ("list-jobs", "history", "audit-log"):
        raise ConfigError("--json goes with --list-jobs, --history or --audit-log")
    if config.force and name not in ("job", "reset-job", "audit-ghosts"):
        raise ConfigError("--force goes with --job, --reset-job or --audit-ghosts")
    if config.reason and name not in REASONED:
        raise ConfigError(
            "--reason goes with --pause, --resume, --run-now, --cancel or --reset-job"
        )
    if config.until and name != "pause":
        raise ConfigError("--until goes with --pause")
    argument = config[name] if name in NAMED else ""
    if name in NAMED and not str(argument).strip():
        raise ConfigError(f"--{name} needs a job: --{name}=APP_NAME")
    return Command(
        name=name,
        argument=str(argument).strip(),
        force=bool(config.force),
        json=bool(config.json),
        reason=str(config.reason or ""),
        until=str(config.until or ""),
    )


# The commands that name a job, and those that take a --reason.
NAMED = ("reset-job", "job", "pause", "resume", "run-now", "cancel", "history")
REASONED = ("pause", "resume", "run-now", "cancel", "reset-job")


def daemon_seconds(config: Any, name: str) -> float:
    """A daemon.* duration, checked: positive for the poll, not negative for the grace."""
    value = float(config.daemon[name])
    if value < 0 or (name == "poll_seconds" and value == 0):
        raise ConfigError(
            f"daemon.{name} must be {'positive' if name == 'poll_seconds' else 'at least 0'}"
        )
    return value


def web_port(config: Any) -> int | None:
    """web.port as a number, None when empty."""
    text = str(config.web.port or "").strip()
    if not text:
        return None
    try:
        port = int(text)
    except ValueError:
        raise ConfigError(f"web.port: {text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"web.port must be from 0 to 65535, not {port}")
    return port


def daemon_workers(config: Any) -> int:
    workers = int(config.daemon.workers)
    if workers < 1:
        raise ConfigError(f"daemon.workers must be at least 1, not {workers}")
    return workers


def fill_in_early_names(config: Any, given: dict[str, str]) -> None:
    """``[resource] [[postgresql]]``'s empty connection values, filled in from the early
    names the file gives, so that the jobs' ``ConnectionFactory`` reaches the database
    the state is in (it falls back to that section when its own values are empty)."""
    if not any(name in EARLY_NAMES for name in given):
        return
    section = config.resource.postgresql
    for key, value in postgres_values(config, given).items():
        if value not in (None, "") and section.get(key) != value:
            section[key] = value
