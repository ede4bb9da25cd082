"""What the page, /api/jobs and /metrics show of notifications and policies."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from crontabber import App, web
from crontabber.jobs.policy import Calendar, JobPolicy
from crontabber.jobs.spec import JobSpec
from crontabber.record import replace
from crontabber.store import StateStore
from crontabber.web.app import StatusApp

from ..helpers.specs import at, make_spec
from ..helpers.wsgi import call


class Nightly(App):
    app_name = "nightly"


@pytest.fixture
def app(store: StateStore) -> Iterator[StatusApp]:
    policy = JobPolicy(
        jitter_seconds=30, exclude=Calendar("RDATE:20261225"), ping_url="https://x/y"
    )
    spec: JobSpec = replace(make_spec(Nightly), policy=policy)
    store.record_event(
        "nightly",
        "failed",
        at("2026-12-06 03:00"),
        sinks=("webhook",),
        host="web-1",
        text="crontabber: nightly failed on web-1",
        error="RuntimeError: <b>full</b>",
    )
    store.record_event(
        "nightly",
        "late",
        at("2026-12-06 04:00"),
        sinks=("webhook", "email"),
        host="web-2",
        text="crontabber: nightly is late",
    )
    [claimed] = store.claim_notifications(batch=1, lease=dt.timedelta(minutes=1))
    store.notification_done(claimed.id, status="sent")
    application = web.create_app(store, [spec])
    yield application


def test_the_api_gives_each_jobs_policy_and_events(app: StatusApp) -> None:
    reply = call(app, "/api/jobs")
    [job] = json.loads(reply.body)["jobs"]
    assert job["policy"]["jitter_seconds"] == 30 and job["policy"]["exclude"] == "RDATE:20261225"
    assert job["policy"]["ping"] is True and "https://x/y" not in reply.body
    assert sorted((e["event"], e["sink"], e["status"]) for e in job["events"]) == [
        ("failed", "webhook", "sent"),
        ("late", "email", "pending"),
        ("late", "webhook", "pending"),
    ]


def test_the_job_page_lists_its_notifications_escaped(app: StatusApp) -> None:
    page = call(app, "/jobs/nightly").body
    assert page.count('class="event-row"') == 3
    assert "crontabber: nightly is late" in page and "<b>full</b>" not in page
    assert "jitter up to 30s" in page and "RDATE:20261225" in page and "https://x/y" not in page


def test_metrics_count_notifications_by_kind_and_status(app: StatusApp) -> None:
    text = call(app, "/metrics").body
    [family] = [
        f for f in text_string_to_metric_families(text) if f.name == "crontabber_notifications"
    ]
    counts = {(s.labels["kind"], s.labels["status"]): s.value for s in family.samples}
    assert counts == {("failed", "sent"): 1, ("late", "pending"): 2}
