"""Job specs: a ``jobs`` line turned into an importable, validated job, and their graph."""

from __future__ import annotations

import datetime as dt
import graphlib
import importlib
from collections.abc import Sequence

from crontabber.errors import ConfigError
from crontabber.jobs.app import App, as_app_names
from crontabber.jobs.policy import CALENDAR_SEARCH, JobPolicy
from crontabber.jobs.schedule import UTC, Schedule
from crontabber.jobs.setting import JobLine
from crontabber.record import field, record

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from typing import Any


@record
class JobSpec:
    """Everything the runner needs to know about one configured job.

    In scripts and tests, ``schedule=FrequencySchedule(dt.timedelta(hours=1))`` is the
    ``module.Class|1h`` of a jobs line.
    """

    app_name: str
    app_class: type
    class_path: str
    schedule: Schedule
    depends_on: tuple[str, ...] = ()
    config: Any = field(default=None, compare=False)
    # Retries, auto-pause, jitter and the days it skips (crontabber.jobs.policy).
    policy: JobPolicy = field(default_factory=JobPolicy)

    @property
    def max_runtime(self) -> float | None:
        """Seconds after which a run is interrupted: ``max_runtime`` in the job's
        section of the ini file, else the class's ``max_runtime``; None or 0: no limit."""
        try:
            configured = getattr(self.config, "max_runtime", None)
        except KeyError:  # a configman namespace without the option
            configured = None
        value = (
            configured
            if configured not in (None, "")
            else getattr(self.app_class, "max_runtime", None)
        )
        return float(value) if value else None

    @property
    def is_backfill(self) -> bool:
        return bool(getattr(self.app_class, "is_backfill", False))

    # The runner asks the job's schedule these three questions, and only these.

    def is_due(self, next_run: dt.datetime | None, now: dt.datetime) -> bool:
        """Whether the job is due at ``now``, given its recorded ``next_run``."""
        if next_run is None:
            return self.first_run(now) <= now
        return next_run <= now

    def first_run(self, now: dt.datetime) -> dt.datetime:
        """When the job, never run, is first due, seen at ``now``."""
        return self._placed(self.schedule.first_run(now))

    def next_run_after(self, now: dt.datetime) -> dt.datetime:
        """When the job runs next after succeeding at ``now``."""
        return self._placed(self.schedule.next_run_after(now))

    def backfill_plan(
        self, last_success: dt.datetime | None, now: dt.datetime
    ) -> tuple[list[dt.datetime], dt.datetime]:
        """The dates a backfill job runs for at ``now`` (those its calendar skips left
        out), and its next run after them."""
        dates, next_run = self.schedule.backfill_plan(last_success, now)
        calendar, zone = self.policy.exclude, self.schedule.zone
        if calendar is not None:
            dates = [date for date in dates if not calendar.excludes(date, zone)]
        return dates, self._placed(next_run)

    def _placed(self, instant: dt.datetime) -> dt.datetime:
        """A scheduled instant as the job's policy places it: past the days its calendar
        skips, then moved by its jitter."""
        calendar = self.policy.exclude
        if calendar is not None:
            give_up = instant + CALENDAR_SEARCH
            while calendar.excludes(instant, self.schedule.zone):
                instant = self.schedule.next_run_after(instant)
                if instant > give_up:
                    raise ConfigError(f"{self.app_name}: its exclude calendar skips every run")
        return instant + self.policy.jitter(self.app_name, instant)


def import_class(class_path: str) -> type:
    """Import ``python.module.ClassName``; a ConfigError names what is missing."""
    module_name, _, class_name = class_path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"cannot import module {module_name!r} for job {class_path!r}: {exc}"
        ) from None
    except Exception as exc:  # the module itself raised while importing
        raise ConfigError(
            f"importing module {module_name!r} for job {class_path!r} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    try:
        return getattr(module, class_name)
    except AttributeError:
        raise ConfigError(f"module {module_name!r} has no class {class_name!r}") from None


def spec_for(
    line: JobLine,
    app_class: type,
    config: Any = None,
    default_zone: dt.tzinfo = UTC,
    policy: JobPolicy | None = None,
) -> JobSpec:
    """A JobSpec for an imported class, checking it is a usable job class.

    The schedule is read in the entry's own zone, else in ``default_zone``.
    """
    if not isinstance(app_class, type) or not callable(getattr(app_class, "run", None)):
        raise ConfigError(f"job {line.class_path!r} is not a class with a run() method")
    if not _makes_with_two_arguments(app_class):
        raise ConfigError(
            f"job {line.class_path!r} cannot be made as {line.class_name}(config, "
            "job_information): derive it from crontabber.App"
        ) from None
    if getattr(app_class, "run", None) is App.run:
        raise ConfigError(
            f"job {line.class_path!r} does not implement run(): define run(self) in it"
        )
    app_name = getattr(app_class, "app_name", "")
    if not app_name or not isinstance(app_name, str):
        raise ConfigError(f"job {line.class_path!r} has no app_name")
    depends_on = as_app_names(getattr(app_class, "depends_on", ()))
    return JobSpec(
        app_name=app_name,
        app_class=app_class,
        class_path=line.class_path,
        schedule=line.schedule_in(default_zone),
        depends_on=depends_on,
        config=config,
        policy=policy or JobPolicy(),
    )


# Whether classes made by one metaclass, __new__ and __init__ take (config, job_information):
# a thousand jobs deriving from App are checked once, not a thousand times.
# App's own (config=None, job_information=None) is known to: no inspect for it.
_SIGNATURE_CHECKS: dict[tuple[Any, ...], bool] = {(type, object.__new__, App.__init__): True}


def _makes_with_two_arguments(app_class: type) -> bool:
    """Whether ``app_class(config, job_information)`` binds, as a run makes the job."""
    key = (type(app_class), app_class.__new__, app_class.__init__)
    if getattr(app_class, "__signature__", None) is not None:
        key = (app_class,)  # a signature of its own: checked for itself
    if key not in _SIGNATURE_CHECKS:
        import inspect

        try:
            inspect.signature(app_class).bind(None, None)
            _SIGNATURE_CHECKS[key] = True
        except (TypeError, ValueError):
            _SIGNATURE_CHECKS[key] = False
    return _SIGNATURE_CHECKS[key]


def graph_problems(specs: Sequence[JobSpec]) -> list[tuple[tuple[str, ...], str]]:
    """Every problem of the dependency graph, as (app names involved, message)."""
    problems: list[tuple[tuple[str, ...], str]] = []
    by_name: dict[str, JobSpec] = {}
    for spec in specs:
        if spec.app_name in by_name:
            problems.append(
                (
                    (spec.app_name,),
                    f"app name {spec.app_name!r} is used by both "
                    f"{by_name[spec.app_name].class_path!r} and {spec.class_path!r}",
                )
            )
        by_name[spec.app_name] = spec
    for spec in specs:
        problems.extend(
            (
                (spec.app_name,),
                f"job {spec.app_name!r} depends on {dependency!r}, which is not in the jobs list",
            )
            for dependency in spec.depends_on
            if dependency not in by_name
        )
    graph = {spec.app_name: [d for d in spec.depends_on if d in by_name] for spec in specs}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        cycle = tuple(exc.args[1])
        problems.append((tuple(sorted(set(cycle))), f"dependency cycle: {' -> '.join(cycle)}"))
    return problems


def order_jobs(specs: Sequence[JobSpec]) -> list[JobSpec]:
    """The specs in dependency order; unknown dependencies, duplicates and cycles raise."""
    problems = graph_problems(specs)
    if problems:
        raise ConfigError(problems[0][1])
    by_name = {spec.app_name: spec for spec in specs}
    order = graphlib.TopologicalSorter({spec.app_name: spec.depends_on for spec in specs})
    return [by_name[name] for name in order.static_order()]


def usable_jobs(
    specs: Sequence[JobSpec], misconfigured: set[str]
) -> tuple[list[JobSpec], list[JobSpec]]:
    """The specs that can run when the jobs named in ``misconfigured`` (app names,
    class paths or jobs entries) cannot, and those held back because they depend,
    directly or not, on one that cannot."""
    usable = [
        spec
        for spec in specs
        if spec.app_name not in misconfigured and spec.class_path not in misconfigured
    ]
    held_back: list[JobSpec] = []
    while True:
        names = {spec.app_name for spec in usable}
        kept = [spec for spec in usable if all(name in names for name in spec.depends_on)]
        if len(kept) == len(usable):
            return usable, held_back
        held_back.extend(spec for spec in usable if spec not in kept)
        usable = kept
