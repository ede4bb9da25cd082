"""The configman edge: options, the ini file and the command line become plain values.

Nothing past this module sees configman. :func:`load` runs configman over
``argv`` and returns a :class:`Settings`, whose job specs, database URL and
durations are what the runner and the state store take.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import sys
import warnings
from collections.abc import Callable, Sequence

from crontabber.config.job_config import apply_job_section_options, local_keys
from crontabber.config.options import COMMAND_OPTIONS, COMMAND_SWITCHES, OPTIONS
from crontabber.errors import ConfigError
from crontabber.jobs.schedule import UTC, parse_zone
from crontabber.jobs.setting import JobLine, parse_job_entry, split_jobs_setting
from crontabber.jobs.spec import JobSpec, graph_problems, import_class, spec_for
from crontabber.record import field, record, replace

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from typing import Any

STATE_FILE_NAME = "crontabber.sqlite"
DEFAULT_CONF = os.path.join(".", "crontabber.ini")  # configman's default for app_name crontabber
NO_CONFIGURATION = (
    "no configuration found: give one with --admin.conf=FILE, "
    "or run in a directory that has a crontabber.ini"
)
WRITTEN_FORMAT = "ini"  # the one format configman writes that reads back

log = logging.getLogger("crontabber")


@record
class JobProblem:
    """A configuration problem: the job entries or app names it concerns, and what is wrong."""

    subjects: tuple[str, ...]
    message: str
    # Whether it concerns only its jobs (they do not run; the others do), or the
    # whole configuration (nothing runs).
    of_jobs_only: bool = True


class JobsSetting:
    """The value of the ``jobs`` option: parsed entries, their classes, their problems.

    configman merges ``required_config`` into the ``crontabber`` namespace, which
    gives each job a ``[[class-ClassName]]`` section for its own options.
    Nothing here raises: problems are collected so ``--configtest`` can list them all.
    """

    def __init__(self, text: str | Sequence[str]) -> None:
        if not isinstance(text, str):  # configobj splits an unquoted one-line value on commas
            text = ",".join(text)
        self.text = text
        self.jobs: list[tuple[JobLine, type]] = []
        self.problems: list[JobProblem] = []
        for entry in split_jobs_setting(text):
            try:
                line = parse_job_entry(entry)
                app_class = import_class(line.class_path)
            except ConfigError as exc:
                self.problems.append(JobProblem((entry,), str(exc)))
                continue
            self.jobs.append((line, app_class))

    @functools.cached_property
    def required_config(self) -> Any:
        """The jobs' options for configman, a ``class-ClassName`` namespace each (made
        when configman asks: a tick read without configman never does)."""
        required_config = _configman().Namespace()
        for line, app_class in self.jobs:
            own_options = job_options(app_class) or {}
            namespace = required_config.namespace(namespace_name(line))
            for key, option in dict(own_options).items():
                namespace[key] = option
            if "max_runtime" not in namespace:
                namespace.add_option(
                    "max_runtime",
                    default=float(getattr(app_class, "max_runtime", None) or 0),
                    doc="seconds after which a run is interrupted and recorded as failed (0: no limit)",
                    from_string_converter=float,
                )
        return required_config

    def __str__(self) -> str:
        """The entries on one line (``--help``): the jobs syntax, comments left out."""
        return ", ".join(split_jobs_setting(self.text))

    def to_str(self) -> str:
        """The value as an ini file takes it back (``--admin.dump_conf``): one entry
        per line, comments kept, inside triple quotes."""
        lines = [line.strip() for line in self.text.splitlines() if line.strip()]
        if not lines:
            return ""
        quote = "'''" if "'''" not in self.text else '"""'
        body = "".join(f"\n        {line}" for line in lines)
        return f"{quote}{body}\n    {quote}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JobsSetting) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


def job_options(app_class: type) -> Any:
    """A job class's options: ``get_required_config()`` (every base's, merged), else its own."""
    get = getattr(app_class, "get_required_config", None)
    if callable(get):
        try:
            return get()
        except TypeError:  # not a classmethod: the options of the class itself
            pass
    return getattr(app_class, "required_config", None)


def namespace_name(line: JobLine) -> str:
    return f"class-{line.class_name}"


@record
class Command:
    """The admin command asked for on the command line (``name`` None: a normal run)."""

    name: str | None = None
    argument: str = ""
    force: bool = False
    json: bool = False


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
    heartbeat_interval: dt.timedelta = dt.timedelta(seconds=30)
    heartbeat_stale_intervals: int = 3
    host_name: str = ""
    state_retry: dt.timedelta = dt.timedelta(seconds=60)
    auto_migrate: bool = True
    daemon_poll: dt.timedelta = dt.timedelta(seconds=10)
    daemon_shutdown_grace: dt.timedelta = dt.timedelta(seconds=30)
    daemon_workers: int = 1
    web_host: str = "127.0.0.1"
    web_port: int | None = None  # None: 8080 for --serve, and no page for --daemon
    web_auth_token: str = ""
    sentry_dsn: str = ""
    command: Command = field(default_factory=Command)
    problems: tuple[JobProblem, ...] = field(default=())
    # Said once as a WARNING, not stopping the run: unknown options without --admin.strict.
    warnings: tuple[str, ...] = field(default=())
    # configman's mapping: each job's options acquire from it through weak references.
    raw_config: Any = field(default=None, compare=False, repr=False)
    # Read without configman: what each job sees as ``self.config``, made when it runs
    # (None: each spec's own ``config``).
    job_config: Callable[[JobSpec], Any] | None = field(default=None, compare=False, repr=False)


def _configman() -> Any:
    from crontabber.config import configman_compat

    return configman_compat.load()


def definitions(jobs_setting: type[JobsSetting] | None = None) -> Any:
    """The option definitions of :mod:`crontabber.config.options`, each with its doc, for configman
    (``jobs_setting``: the class the ``jobs`` option converts to, JobsSetting by default)."""
    configman = _configman()
    root = configman.Namespace()
    converters = {"jobs": jobs_setting or JobsSetting, "int": int, "float": float}
    for option in OPTIONS:
        *path, name = option.name.split(".")
        namespace = root
        for part in path:
            namespace = namespace[part] if part in namespace else namespace.namespace(part)
        extra: dict[str, Any] = {}
        if option.kind in converters:
            extra["from_string_converter"] = converters[option.kind]
        if option.secret:
            extra["secret"] = True
        if option.reference_value_from:
            extra["reference_value_from"] = option.reference_value_from
        namespace.add_option(name, default=option.default, doc=option.doc, **extra)
    # The admin commands: command-line switches, kept out of ``--admin.print_conf``
    # and ``--admin.dump_conf`` so a dumped file never runs a command.
    for command in COMMAND_OPTIONS:
        root.add_option(
            command.name,
            default=command.default,
            doc=command.doc,
            short_form=command.short_form,
            exclude_from_print_conf=True,
            exclude_from_dump_conf=True,
        )
    return root


def config_path_from_argv(argv: Sequence[str]) -> str | None:
    """The ``--admin.conf`` value, read before configman so job modules can be found."""
    for index, arg in enumerate(argv):
        if arg.startswith("--admin.conf="):
            return arg.split("=", 1)[1]
        if arg == "--admin.conf" and index + 1 < len(argv):
            return argv[index + 1]
    return None


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


def _manager_class(configman: Any) -> type:
    """configman's ConfigurationManager, leaving ``admin.strict`` to crontabber.

    configman raises on the first unknown option under ``admin.strict``; here
    it always warns, so every unknown option can be named, and strictness is
    kept for :func:`settings_from`.
    """

    class Manager(configman.ConfigurationManager):  # type: ignore[misc, name-defined]
        strict = False

        def _check_for_mismatches(self, known_keys: Any) -> None:
            option = self.option_definitions.admin.strict
            saved = option.default
            Manager.strict = bool(option.value)
            option.default = False
            try:
                super()._check_for_mismatches(known_keys)
            finally:
                option.default = saved

        def write_conf(self, config_file_type: Any, opener: Any, skip_keys: Any = None) -> None:
            """Only ini: configman's other formats do not read back (``py`` is not even
            Python: option names such as ``list-jobs`` and ``class-Name`` are not names)."""
            if config_file_type != WRITTEN_FORMAT:
                raise ConfigError(unwritable_format(self, config_file_type))
            super().write_conf(config_file_type, opener, skip_keys=skip_keys)

    return Manager


def unwritable_format(manager: Any, config_file_type: Any) -> str:
    """The one line that refuses a format of ``--admin.print_conf``/``--admin.dump_conf``."""
    dump = manager._get_option("admin.dump_conf").value
    if dump and not manager._get_option("admin.print_conf").value:
        return (
            f"--admin.dump_conf={dump}: the file name must end in .{WRITTEN_FORMAT}, "
            "the one format crontabber writes (and reads back)"
        )
    return (
        f"--admin.print_conf={config_file_type}: crontabber writes only "
        f"--admin.print_conf={WRITTEN_FORMAT} (the one format that reads back)"
    )


def read_config(argv: Sequence[str], jobs_setting: type[JobsSetting] | None = None) -> RawConfig:
    """Run configman over ``argv`` (``jobs_setting``: see :func:`definitions`).

    The config file's directory goes on the import path first, so jobs kept
    beside it import without PYTHONPATH. Mistakes become ConfigError.
    """
    configman = _configman()
    conf_path = config_path_from_argv(argv)
    if conf_path is None and os.path.isfile(DEFAULT_CONF):
        conf_path = DEFAULT_CONF
    if conf_path is not None:
        if not os.path.isfile(conf_path) or not os.access(conf_path, os.R_OK):
            raise ConfigError(f"cannot read config file {conf_path!r}")
        put_on_import_path(conf_path)
    import configobj
    from configman.config_exceptions import ConfigmanException
    from configman.value_sources.source_exceptions import ValueException

    try:
        manager_class = _manager_class(configman)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            manager = manager_class(
                [definitions(jobs_setting)],
                values_source_list=[
                    configman.ConfigFileFutureProxy,
                    configman.environment,
                    configman.command_line,
                ],
                argv_source=list(argv),
                app_name="crontabber",
                app_description="a distributed cron job runner with database locking",
                options_banned_from_help=[],
            )
            config = manager.get_config()
    except configobj.ConfigObjError as exc:
        raise ConfigError(f"cannot parse config file {conf_path!r}: {exc}") from None
    except ValueException as exc:  # configman could not load the config file
        detail = str(exc).split(";")[0].removeprefix("ConfigObj cannot load ini: ")
        raise ConfigError(f"cannot parse config file {conf_path!r}: {detail}") from None
    except ConfigmanException as exc:
        raise ConfigError(
            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        ) from None
    for argument in manager.args:
        raise ConfigError(unexpected_argument(argument))
    if conf_path is None:  # neither --admin.conf nor ./crontabber.ini
        raise ConfigError(NO_CONFIGURATION)
    unknown = [
        name.strip()
        for warning in caught
        if str(warning.message).startswith("Invalid options:")
        for name in str(warning.message).split(":", 1)[1].split(",")
    ]
    # As in the original, every job's section acquires ``logger`` from the top.
    config.logger = logging.getLogger("crontabber")
    return RawConfig(config, conf_path, tuple(unknown), strict=manager_class.strict)


def put_on_import_path(conf_path: str) -> None:
    """The config file's directory goes first on the import path: jobs kept beside it
    import without PYTHONPATH."""
    conf_dir = os.path.dirname(os.path.abspath(conf_path))
    if conf_dir not in sys.path:
        sys.path.insert(0, conf_dir)


def load_settings(argv: Sequence[str], *, plain: bool = True) -> Settings:
    """The settings of ``argv``: read without configman when :mod:`crontabber.config.plain`
    can (``plain``) and no job has options of its own, else through configman."""
    settings = plain_settings(argv) if plain else None
    return settings if settings is not None else settings_from(read_config(argv))


def plain_settings(argv: Sequence[str]) -> Settings | None:
    """The settings read without configman, or None when configman must read them."""
    from crontabber.config import plain as plain_config

    read = plain_config.read(argv, DEFAULT_CONF)
    if read is None:
        return None
    values, conf_path = read
    put_on_import_path(conf_path)
    jobs = JobsSetting(values.crontabber.jobs)
    if any(job_options(app_class) for _, app_class in jobs.jobs):
        return None  # configman builds those jobs' options (it imports them again: cached)
    values.crontabber["jobs"] = jobs
    settings = settings_from(RawConfig(values, conf_path, from_configman=False))
    return replace(settings, job_config=JobConfigs(argv))


class JobConfigs:
    """What each job sees as ``self.config``, made by configman when the first job runs,
    for settings read without it: a tick pays for configman only when a job is due.

    The job sees what it would have seen had configman read the configuration first:
    its section (``max_runtime``, as configman's namespace for it holds), acquiring
    ``logger`` and every option above it.
    """

    def __init__(self, argv: Sequence[str]) -> None:
        self.argv = list(argv)
        self._settings: Settings | None = None
        self._configs: dict[str, Any] = {}

    def __call__(self, spec: JobSpec) -> Any:
        if self._settings is None:
            # Kept: each section acquires from configman's mapping through weak references.
            self._settings = settings_from(read_config(self.argv, JobsWithoutOptions))
            for configured in self._settings.specs:
                # What configman's class-Name namespace of a job without options holds.
                configured.config["max_runtime"] = float(
                    getattr(configured.app_class, "max_runtime", None) or 0
                )
                self._configs[configured.app_name] = configured.config
        return self._configs.get(spec.app_name)


class JobsWithoutOptions(JobsSetting):
    """The jobs setting of jobs known to have no options of their own, none of them with a
    section in the file (so the plain reader found): configman makes them no namespaces,
    a thousand of which would cost it more than the jobs do; :class:`JobConfigs` gives
    each job's section what its namespace would have held."""

    @functools.cached_property
    def required_config(self) -> Any:
        return _configman().Namespace()


def unexpected_argument(argument: str) -> str:
    """The one line for a word on the command line that is not an option."""
    message = f"unexpected argument {argument!r}: options start with --"
    if argument.endswith((".ini", ".conf")):
        message += f" (a config file is given as --admin.conf={argument})"
    return message


def database_url(config: Any, conf_path: str | None) -> str:
    """The state database: ``database_url``, else ``[resource] [[postgresql]]``, else SQLite.

    A relative SQLite path is read beside the config file, like the default file.
    """
    directory = os.path.dirname(os.path.abspath(conf_path)) if conf_path else os.getcwd()
    url = str(config.crontabber.database_url or "")
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        path = url.removeprefix("sqlite:///")
        if path and not path.startswith(":memory:") and not path.startswith("file:"):
            return "sqlite:///" + os.path.join(directory, path)
    if url:
        return url
    pg = config.resource.postgresql
    values = {key: pg.get(key) for key in ("host", "port", "dbname", "user", "password")}
    if values["host"] or values["dbname"] or values["user"]:
        return postgres_url(values)
    return "sqlite:///" + os.path.join(directory, STATE_FILE_NAME)


def postgres_url(values: dict[str, Any]) -> str:
    """``postgresql://user:password@host:port/dbname``, each part quoted, empty ones left out."""
    from urllib.parse import quote  # here: --help and --version need no URL

    user = quote(str(values.get("user") or ""), safe="")
    password = quote(str(values.get("password") or ""), safe="")
    credentials = f"{user}:{password}@" if password else f"{user}@" if user else ""
    host = str(values.get("host") or "")
    port = f":{values['port']}" if values.get("port") and host else ""
    dbname = quote(str(values.get("dbname") or ""), safe="")
    return f"postgresql://{credentials}{host}{port}/{dbname}"


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
            specs.append(spec_for(line, app_class, section, default_zone))
        except ConfigError as exc:
            problems.append(JobProblem((line.class_path,), str(exc)))
    command = command_from(config)
    unknown = unknown_options(raw, {namespace_name(line) for line, _ in jobs_setting.jobs})
    state_url = database_url(config, raw.conf_path)
    warnings_: tuple[str, ...] = tuple(filter(None, [foreign_state_class(config, state_url)]))
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
        specs=tuple(specs),
        database_url=state_url,
        error_retry_time=dt.timedelta(seconds=config.crontabber.error_retry_time),
        max_ongoing_age=dt.timedelta(hours=config.crontabber.max_ongoing_age_hours),
        log_level=str(config.logging.level).upper(),
        log_file=str(config.logging.file or ""),
        log_retention=(
            dt.timedelta(days=config.crontabber.log_retention_days)
            if config.crontabber.log_retention_days
            else None
        ),
        problems=tuple(problems),
        raw_config=config,
    )


def foreign_state_class(config: Any, state_url: str) -> str | None:
    """A warning when the state goes to SQLite while ``[resource] [[postgresql]]`` names
    a connection class of its own: the original kept its state through that class."""
    chosen = config.resource.postgresql.get("database_class")
    if not state_url.startswith("sqlite") or chosen is None:
        return None
    name = f"{chosen.__module__}.{chosen.__qualname__}" if isinstance(chosen, type) else chosen
    if name == "crontabber.connection_factory.ConnectionFactory":
        return None
    return (
        f"the state database is {state_url}: [resource] [[postgresql]] names "
        f"database_class={name}, whose options crontabber does not read for its own "
        "state; set crontabber.database_url to keep the original's state"
    )


def unknown_options(raw: RawConfig, configured: set[str]) -> list[str]:
    """The unknown options worth a word: those of a job not in the jobs list are harmless."""
    names = []
    for name in raw.unknown_options:
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
    if config.json and name != "list-jobs":
        raise ConfigError("--json goes with --list-jobs")
    if config.force and name not in ("job", "reset-job", "audit-ghosts"):
        raise ConfigError("--force goes with --job, --reset-job or --audit-ghosts")
    argument = config[name] if name in ("reset-job", "job") else ""
    return Command(name=name, argument=argument, force=bool(config.force), json=bool(config.json))


def load(argv: Sequence[str]) -> Settings:
    """Settings for a run; the first job problem, if any, raises ConfigError."""
    settings = settings_from(read_config(argv))
    if settings.problems:
        raise ConfigError(settings.problems[0].message)
    return settings


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
