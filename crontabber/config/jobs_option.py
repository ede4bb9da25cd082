"""The value of the ``jobs`` option: its entries parsed, their classes imported, their problems.

configman converts the option's text to a :class:`JobsSetting`, whose
``required_config`` gives each job a ``[[class-ClassName]]`` section for its
own options; the plain reader builds one too. Nothing here raises: problems
are collected (:class:`JobProblem`) so ``--configtest`` can list them all.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from crontabber.errors import ConfigError
from crontabber.jobs.setting import JobLine, parse_job_entry, split_jobs_setting
from crontabber.jobs.spec import import_class
from crontabber.record import record

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from typing import Any


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
            for name, doc in JOB_POLICY_OPTIONS.items():
                if name not in namespace:
                    namespace.add_option(name, default="", doc=doc)
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


# The policies a job's section may set for itself (empty: [crontabber]'s); see
# crontabber.jobs.policy. (Not error_retry_time: a job's section acquires
# [crontabber]'s, which the original crontabber's jobs read as self.config.error_retry_time.)
JOB_POLICY_OPTIONS = {
    "error_retry_backoff": "the n-th retry in a row waits error_retry_time x this^(n-1)",
    "max_error_retry_time": "the longest a retry waits, in seconds (0: no limit)",
    "max_consecutive_failures": "pause this job after this many failures in a row (0: never)",
    "jitter_seconds": "move each scheduled run by the same offset on every host, in [0, this)",
    "exclude": "RFC 5545 lines (RRULE:..., RDATE:...) naming the days this job skips",
    "ping_url": "a Healthchecks.io-style URL: /start when a run starts, the URL on "
    "success, /fail on failure",
}


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


class JobsWithoutOptions(JobsSetting):
    """The jobs setting of jobs known to have no options of their own, none of them with a
    section in the file (so the plain reader found): configman makes them no namespaces,
    a thousand of which would cost it more than the jobs do;
    :class:`crontabber.config.configman_edge.JobConfigs` gives each job's section what
    its namespace would have held."""

    @functools.cached_property
    def required_config(self) -> Any:
        return _configman().Namespace()


def _configman() -> Any:
    from crontabber.config import configman_compat

    return configman_compat.load()
