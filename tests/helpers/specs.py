"""Instants and job specs for in-process runs: every instant a test passes is its own."""

from __future__ import annotations

import datetime as dt

from crontabber.jobs.app import as_app_names
from crontabber.jobs.schedule import FrequencySchedule
from crontabber.jobs.spec import JobSpec

UTC = dt.timezone.utc


def at(text: str) -> dt.datetime:
    """An aware UTC datetime from ``YYYY-MM-DD HH:MM``."""
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


def make_spec(
    app_class: type,
    frequency: dt.timedelta = dt.timedelta(minutes=5),
    time: dt.time | None = None,
    config: object = None,
) -> JobSpec:
    return JobSpec(
        app_name=app_class.app_name,
        app_class=app_class,
        class_path=f"{app_class.__module__}.{app_class.__qualname__}",
        schedule=FrequencySchedule(frequency, time),
        depends_on=as_app_names(app_class.depends_on),
        config=config,
    )
