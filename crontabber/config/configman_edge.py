"""The configman edge: options, the ini file and the command line become plain values.

:func:`load_settings` reads ``argv`` without configman when
:mod:`crontabber.config.plain` can, and through configman
(:func:`read_config`) otherwise; either way :func:`crontabber.config.settings.settings_from`
makes the :class:`~crontabber.config.settings.Settings` the rest of crontabber
takes. This module and :mod:`crontabber.config.configman_compat` are the only
ones that import configman.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import warnings
from collections.abc import Sequence

from crontabber.config.jobs_option import JobsSetting, JobsWithoutOptions, job_options
from crontabber.config.options import COMMAND_OPTIONS, OPTIONS, comma_joined
from crontabber.config.settings import RawConfig, Settings, settings_from
from crontabber.errors import ConfigError
from crontabber.jobs.spec import JobSpec
from crontabber.record import replace

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from typing import Any

DEFAULT_CONF = os.path.join(".", "crontabber.ini")  # configman's default for app_name crontabber


NO_CONFIGURATION = (
    "no configuration found: give one with --admin.conf=FILE, "
    "or run in a directory that has a crontabber.ini"
)


WRITTEN_FORMAT = "ini"  # the one format configman writes that reads back

log = logging.getLogger("crontabber")


def _configman() -> Any:
    from crontabber.config import configman_compat

    return configman_compat.load()


def definitions(jobs_setting: type[JobsSetting] | None = None) -> Any:
    """The option definitions of :mod:`crontabber.config.options`, each with its doc, for configman
    (``jobs_setting``: the class the ``jobs`` option converts to, JobsSetting by default)."""
    configman = _configman()
    root = configman.Namespace()
    converters = {
        "jobs": jobs_setting or JobsSetting,
        "int": int,
        "float": float,
        "text": comma_joined,
    }
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

        def _setup_admin_options(self, values_source_list: Any) -> Any:
            admin = super()._setup_admin_options(values_source_list)
            admin.admin.print_conf.doc = (
                f"write the current config to stdout as {WRITTEN_FORMAT} (the one format "
                "that reads back)"
            )
            return admin

        def write_conf(self, config_file_type: Any, opener: Any, skip_keys: Any = None) -> None:
            """Only ini: configman's other formats do not read back (``py`` is not even
            Python: option names such as ``list-jobs`` and ``class-Name`` are not names).
            What is written is a file to start from: no ``#+include`` of secrets files
            nobody has, and an empty secret shows empty (a set one stays masked)."""
            if config_file_type != WRITTEN_FORMAT:
                raise ConfigError(unwritable_format(self, config_file_type))
            written = io.StringIO()

            @contextlib.contextmanager
            def to_text() -> Any:
                yield written

            super().write_conf(config_file_type, to_text, skip_keys=skip_keys)
            with opener() as stream:
                stream.write(starter_ini(written.getvalue()))

    return Manager


MASKED_DEFAULT = re.compile(r"^(\s*#\s*[\w.-]+\s*=\s*)\*{16}\s*$")


def starter_ini(text: str) -> str:
    """configman's ini as a file to start from: without its ``#+include`` suggestions,
    and with a secret left at its (empty) default written empty, not as asterisks."""
    lines = []
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith("#+include"):
            continue
        masked = MASKED_DEFAULT.match(line.rstrip("\n"))
        lines.append(masked.group(1) + "\n" if masked else line)
    return "".join(lines)


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
    ini = parsed_ini(conf_path) if conf_path is not None else None
    misplaced = option_written_as_section(ini)
    if misplaced is not None:
        raise ConfigError(f"config file {conf_path!r}: {misplaced}")
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
    except KeyError as exc:
        if exc.args != ("required_config",):  # configman expanding a section as an option's
            raise
        raise ConfigError(
            f"config file {conf_path!r}: a section stands where an option is expected "
            "(a job's option written [[name]] where name = VALUE belongs?)"
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
    return RawConfig(
        config,
        conf_path,
        tuple(unknown),
        strict=manager_class.strict,
        postgres_keys=postgres_keys(ini),
    )


def parsed_ini(conf_path: str) -> Any:
    """The file as configobj reads it; None where it cannot (configman says why)."""
    import configobj

    try:
        return configobj.ConfigObj(conf_path, encoding="utf-8", interpolation=False)
    except (configobj.ConfigObjError, OSError, UnicodeDecodeError):
        return None


def option_written_as_section(ini: Any) -> str | None:
    """A line for the first of crontabber's options the file writes as a section
    (``[[port]]`` under ``[web]``), which configman cannot read (it fails with a
    KeyError); None when there is none."""
    options = {option.name for option in OPTIONS}

    def walk(section: Any, prefix: str, depth: int) -> str | None:
        for key, value in section.items():
            if not isinstance(value, dict):
                continue
            name = f"{prefix}{key}"
            if name in options:
                parent = f" under [{prefix.rstrip('.')}]" if prefix else ""
                return (
                    f"{'[' * depth}{key}{']' * depth} is a section, but {name} is an option: "
                    f"write {key} = VALUE{parent}"
                )
            found = walk(value, f"{name}.", depth + 1)
            if found is not None:
                return found
        return None

    return walk(ini, "", 1) if ini is not None else None


def postgres_keys(ini: Any) -> tuple[tuple[str, str], ...]:
    """The keys the file sets in ``[resource] [[postgresql]]`` and ``[secrets]
    [[postgresql]]``, by dotted name, as text: crontabber's own options among them and
    those it has none for (the early names), which configman would only call unknown."""
    if ini is None:
        return ()  # configman read it: what it could not, it said
    found = []
    for top in ("resource", "secrets"):
        outer = ini.get(top)
        section = outer.get("postgresql") if isinstance(outer, dict) else None
        if isinstance(section, dict):
            found += [
                (f"{top}.postgresql.{key}", comma_joined(value))
                for key, value in section.items()
                if not isinstance(value, dict)
            ]
    return tuple(found)


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


def unexpected_argument(argument: str) -> str:
    """The one line for a word on the command line that is not an option."""
    message = f"unexpected argument {argument!r}: options start with --"
    if argument.endswith((".ini", ".conf")):
        message += f" (a config file is given as --admin.conf={argument})"
    return message


def load(argv: Sequence[str]) -> Settings:
    """Settings for a run; the first job problem, if any, raises ConfigError."""
    settings = settings_from(read_config(argv))
    if settings.problems:
        raise ConfigError(settings.problems[0].message)
    return settings
