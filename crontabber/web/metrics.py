"""``/metrics``: the jobs' state in Prometheus's exposition format, via prometheus_client.

Each scrape reads the jobs' states afresh, and the log's rows added since the last
scrape (:mod:`crontabber.store.tally`: the whole log is counted once, at the first),
through a collector on a registry of its own, so nothing of the process (or of
other code's metrics) is exposed.
Timestamps are seconds since the epoch; a time a job does not have yet (it
never succeeded, say) is left out rather than given as 0.

``crontabber_job_runs_total`` and ``crontabber_job_failures_total`` count the
rows of ``crontabber_log``: those it held when the page started, and every row
added since. Pruning old rows (``log_retention_days``) does not lower them; a
page started anew starts from the rows the log holds then, which Prometheus's
``rate()`` and ``increase()`` read as a counter reset.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from crontabber.jobs.spec import JobSpec
from crontabber.store.records import LogCounts, Snapshot
from crontabber.web.reader import Unavailable
from crontabber.web.views import Status, job_rows, log_counts_for


class JobsCollector(Collector):
    """Yields every job's metrics from one read of the database."""

    def __init__(
        self,
        specs: Sequence[JobSpec],
        read: Callable[[], tuple[Snapshot, dict[str, LogCounts]]],
        read_notifications: Callable[[], dict[tuple[str, str], int]] | None = None,
    ) -> None:
        self.specs = specs
        self.read = read
        self.read_notifications = read_notifications

    def describe(self) -> list[Metric]:
        return []  # read only when scraped: registering must not touch the database

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "crontabber_database_up", "1 when the state database answered this scrape, else 0"
        )
        try:
            snapshot, counts = self.read()
        except Unavailable:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from job_metrics(self.specs, snapshot, counts)
        if self.read_notifications is not None:
            yield from notification_metrics(self.read_notifications())


def notification_metrics(counts: dict[tuple[str, str], int]) -> Iterator[Metric]:
    """The outbox by kind and status: pending, sent, and failed (given up) deliveries."""
    notifications = GaugeMetricFamily(
        "crontabber_notifications",
        "notifications in the outbox by event kind and status (pending, sent, failed)",
        labels=["kind", "status"],
    )
    for (kind, status), count in sorted(counts.items()):
        notifications.add_metric([kind, status], count)
    yield notifications


def job_metrics(
    specs: Sequence[JobSpec], snapshot: Snapshot, counts: dict[str, LogCounts]
) -> Iterator[Metric]:
    labels = ["app_name"]

    def gauge(name: str, doc: str) -> GaugeMetricFamily:
        return GaugeMetricFamily(f"crontabber_job_{name}", doc, labels=labels)

    last_success = gauge("last_success_timestamp_seconds", "when the job last succeeded")
    last_run = gauge("last_run_timestamp_seconds", "when the job's last run started")
    next_run = gauge("next_run_timestamp_seconds", "when the job is next due")
    errors = gauge("error_count", "failed runs in a row (0 after a success)")
    ongoing = gauge("ongoing", "1 while a run of the job is claimed, else 0")
    failing = gauge("failing", "1 when the job's last run failed, else 0")
    held = gauge("held_back", "1 when a dependency keeps the job from running, else 0")
    late = gauge("late", "1 when the job is past its next run by more than the page's margin")
    paused = gauge("paused", "1 while an operator's pause keeps every host from running it, else 0")
    duration = gauge("last_duration_seconds", "how long the newest logged run took")
    runs = CounterMetricFamily(
        "crontabber_job_runs", "runs of the job in crontabber_log", labels=labels
    )
    failures = CounterMetricFamily(
        "crontabber_job_failures", "failed runs of the job in crontabber_log", labels=labels
    )
    for row in job_rows(specs, snapshot):
        name = [row.app_name]
        state = row.state
        if state is not None and state.last_success is not None:
            last_success.add_metric(name, state.last_success.timestamp())
        if state is not None and state.last_run is not None:
            last_run.add_metric(name, state.last_run.timestamp())
        next_run.add_metric(name, row.next_run.timestamp())
        errors.add_metric(name, state.error_count if state is not None else 0)
        ongoing.add_metric(name, int(row.status is Status.RUNNING))
        failing.add_metric(name, int(row.status is Status.FAILING))
        held.add_metric(name, int(row.status is Status.HELD_BACK))
        late.add_metric(name, int(row.late))
        paused.add_metric(name, int(row.pause is not None))
        logged = log_counts_for(counts, row.app_name)
        if logged.last_duration is not None:
            duration.add_metric(name, logged.last_duration.total_seconds())
        runs.add_metric(name, logged.runs)
        failures.add_metric(name, logged.failures)
    yield from (last_success, last_run, next_run, errors, ongoing, failing, held, late, paused)
    yield from (duration, runs, failures)


def exposition(collector: JobsCollector, accept: str = "") -> tuple[bytes, str]:
    """One scrape's body and content type, in the format the scraper's ``Accept``
    header asks for (Prometheus text, or OpenMetrics)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type
