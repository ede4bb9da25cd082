"""In-process job classes the admin and status page tests share: a small pipeline
(extract, then load, which fails, then report) and jobs left in every other state
by :func:`populate`: running elsewhere, late, never run, and one with a hostile name."""

from __future__ import annotations

import datetime as dt

from crontabber import App
from crontabber.jobs.schedule import FrequencySchedule, parse_zone
from crontabber.jobs.spec import JobSpec
from crontabber.run.runner import Runner
from crontabber.store import StateStore

from .specs import make_spec
from .store import hold_claim

HOSTILE_NAME = '<script>alert("name")</script>'
HOSTILE_ERROR = '<script>alert("error")</script> & <b>bold</b>'


class Extract(App):
    app_name = "extract"

    def run(self) -> None:
        pass


class Load(App):
    app_name = "load"
    depends_on = "extract"

    def run(self) -> None:
        raise ValueError("bad row 42")


class Report(App):
    app_name = "report"
    depends_on = "load"

    def run(self) -> None:
        pass


class Sweeper(App):
    app_name = "sweeper"

    def run(self) -> None:
        pass


class Stale(App):
    app_name = "stale"

    def run(self) -> None:
        pass


class Newcomer(App):
    app_name = "newcomer"

    def run(self) -> None:
        pass


class Hostile(App):
    app_name = HOSTILE_NAME

    def run(self) -> None:
        raise RuntimeError(HOSTILE_ERROR)


def job_specs() -> list[JobSpec]:
    hour, day = dt.timedelta(hours=1), dt.timedelta(days=1)
    newcomer = make_spec(Newcomer)
    return [
        make_spec(Extract, frequency=day),
        make_spec(Load, frequency=day),
        make_spec(Report, frequency=day),
        make_spec(Sweeper),
        make_spec(Stale, frequency=hour),
        JobSpec(
            newcomer.app_name,
            Newcomer,
            newcomer.class_path,
            FrequencySchedule(day, dt.time(3, 0), parse_zone("Europe/Berlin"), "1d"),
        ),
        make_spec(Hostile, frequency=day),
    ]


EXTRACT_RUNS = 5


def populate(store: StateStore, specs: list[JobSpec]) -> None:
    """Jobs in every state: ok, failing, held back, running elsewhere, late, never run."""
    now = store.read_snapshot().now
    runner = Runner([spec for spec in specs if spec.app_name != "newcomer"], store)
    for hours in range(EXTRACT_RUNS, 0, -1):
        runner.run(now=now - dt.timedelta(hours=hours), only="extract", force=True)
    runner.run()  # load fails, report is held back, the others succeed
    runner.run(now=now - dt.timedelta(hours=3), only="stale", force=True)  # due 2 hours ago
    hold_claim(store, "sweeper")
