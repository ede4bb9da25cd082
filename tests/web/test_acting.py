"""Acting from the status page and its API (crontabber.web.acting, crontabber.web.guard):
each action through the API with a bearer token, on both stores, with its effect in the
database and its audit row; who may act (nobody without a token, 401 with a wrong
one, 403 for a browser's POST without its CSRF token); the page's forms, cookie and
signed results; and what the page shows of pauses, asked-for runs and past runs."""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest
from prometheus_client.parser import text_string_to_metric_families

from crontabber import App, web
from crontabber.jobs.spec import JobSpec
from crontabber.run.runner import Runner
from crontabber.store import StateStore, open_store
from crontabber.web.acting import MAX_BODY
from crontabber.web.app import StatusApp

from ..helpers.apps import HOSTILE_NAME, job_specs, populate
from ..helpers.specs import make_spec
from ..helpers.wsgi import Reply, call

TOKEN = "t0ken-for-the-tests"
BEARER = {"AUTHORIZATION": f"Bearer {TOKEN}"}
BASIC = {"AUTHORIZATION": "Basic " + base64.b64encode(f"alice:{TOKEN}".encode()).decode()}
BY_SCRIPT = "127.0.0.1 (web, bearer token)"
BY_PAGE = "alice@127.0.0.1 (web, page session)"
FORM = "application/x-www-form-urlencoded"
HOSTILE_REASON = '<script>alert("reason")</script> & <b>why</b>'


def post_json(app: StatusApp, path: str, data: object = None, **headers: str) -> Reply:
    body = json.dumps(data).encode() if data is not None else b""
    return call(app, path, method="POST", body=body, content_type="application/json", **headers)


def api(name: str, action: str) -> str:
    return f"/api/jobs/{quote(name, safe='')}/{action}"


@pytest.fixture
def specs() -> list[JobSpec]:
    return job_specs()


@pytest.fixture
def app(store: StateStore, specs: list[JobSpec]) -> Iterator[StatusApp]:
    """The page on a URL, with a token: it reads through a read-only store of its own
    and acts through a writable one it opens when first asked."""
    populate(store, specs)
    application = web.create_app(store.url.text, specs, auth_token=TOKEN)
    yield application
    application.close()


def audit(store: StateStore, name: str) -> list[tuple[str, str, str | None]]:
    """A job's audit rows, oldest first: action, actor, reason."""
    entries = store.read_audit_log(name)
    return [(entry.action, entry.actor, entry.reason) for entry in reversed(entries)]


def test_each_action_through_the_api_with_a_bearer_token(app: StatusApp, store: StateStore) -> None:
    paused = post_json(app, api("load", "pause"), {"reason": "bad input", "until": "2h"}, **BEARER)
    assert paused.status == 200, paused.body
    assert re.fullmatch(
        r"paused load until \d{4}-\d\d-\d\d \d\d:\d\d UTC \(bad input\)", paused.json()["message"]
    )
    pause = store.read_snapshot().paused["load"]
    assert (pause.reason, pause.actor) == ("bad input", BY_SCRIPT)
    assert pause.until is not None
    assert (pause.until - pause.since).total_seconds() == pytest.approx(7200, abs=1)

    resumed = post_json(app, api("load", "resume"), {"reason": "fixed"}, **BEARER)
    assert (resumed.status, resumed.json()) == (200, {"message": "resumed load"})
    assert "load" not in store.read_snapshot().paused

    asked = post_json(app, api("extract", "run-now"), **BEARER)  # no body: no reason
    assert asked.status == 200, asked.body
    assert "extract" in asked.json()["message"]
    assert store.read_snapshot().states["extract"].run_now is not None

    cancelled = post_json(app, api("sweeper", "cancel"), {"reason": "stuck"}, **BEARER)
    assert cancelled.status == 200, cancelled.body
    assert cancelled.json()["message"].startswith("asked worker-7 pid 4321 to cancel sweeper")
    assert store.read_snapshot().states["sweeper"].cancel_requested is not None

    reset = post_json(app, api("stale", "reset"), {"reason": "start over"}, **BEARER)
    assert reset.status == 200, reset.body
    assert reset.json()["message"] == "reset stale: it will run as if it had never run"
    assert "stale" not in store.load_states()

    assert audit(store, "load") == [
        ("pause", BY_SCRIPT, "bad input"),
        ("resume", BY_SCRIPT, "fixed"),
    ]
    assert audit(store, "extract") == [("run-now", BY_SCRIPT, None)]
    assert audit(store, "sweeper") == [("cancel", BY_SCRIPT, "stuck")]
    assert audit(store, "stale") == [("reset", BY_SCRIPT, "start over")]
    # The page read through a read-only store, and acted through a store of its own.
    assert app.reader.store.read_only is True
    assert app.acting._store is not None and app.acting._store is not app.reader.store


def test_refusals_and_mistakes_are_one_line_with_their_status(
    app: StatusApp, store: StateStore
) -> None:
    def error(reply: Reply, status: int) -> str:
        assert reply.status == status, reply.body
        message = reply.json()["error"]
        assert isinstance(message, str) and "\n" not in message
        return message

    assert error(post_json(app, api("nope", "pause"), **BEARER), 404).startswith(
        "no job named 'nope'"
    )
    assert error(post_json(app, api("load", "resume"), **BEARER), 409) == "load is not paused"
    reset_running = error(post_json(app, api("sweeper", "reset"), **BEARER), 409)
    assert reset_running.startswith("sweeper is running on worker-7 pid 4321")
    assert "sweeper" in store.load_states()  # reset is never forced from the web
    assert error(post_json(app, api("sweeper", "run-now"), **BEARER), 409).startswith(
        "sweeper is running"
    )
    assert error(post_json(app, api("extract", "cancel"), **BEARER), 409) == (
        "extract is not running: nothing to cancel"
    )
    assert "neither a time" in error(
        post_json(app, api("load", "pause"), {"until": "soon"}, **BEARER), 400
    )
    assert "at most 1000" in error(
        post_json(app, api("load", "pause"), {"reason": "x" * 1001}, **BEARER), 400
    )
    assert error(post_json(app, api("load", "resume"), {"until": "2h"}, **BEARER), 400) == (
        "resume takes a reason, not until"
    )
    assert error(post_json(app, api("load", "pause"), {"reason": 7}, **BEARER), 400) == (
        "reason must be a string"
    )
    for body in (b"[]", b"not json", b'"text"', b"\xff"):
        reply = call(app, api("load", "pause"), method="POST", body=body, **BEARER)
        assert error(reply, 400).startswith("the body must be a JSON object")
    huge = json.dumps({"reason": "x" * MAX_BODY}).encode()
    assert error(call(app, api("load", "pause"), method="POST", body=huge, **BEARER), 413)
    assert store.read_snapshot().paused == {}
    assert store.read_audit_log() == []


def test_without_a_token_nobody_acts_and_the_page_offers_nothing(
    store: StateStore, specs: list[JobSpec]
) -> None:
    populate(store, specs)
    app = web.create_app(store.url.text, specs)
    try:
        for action in ("pause", "resume", "run-now", "cancel", "reset"):
            reply = post_json(app, api("load", action), {"reason": "x"}, **BEARER)
            assert reply.status == 403, action
            assert "web.auth_token" in reply.json()["error"]
        form = urlencode({"action": "pause", "confirm": "yes"}).encode()
        reply = call(app, "/jobs/load", method="POST", body=form, content_type=FORM)
        assert reply.status == 403 and "web.auth_token" in reply.body
        page = call(app, "/jobs/load")
        assert page.status == 200
        assert "<form" not in page.body and "csrf_token" not in page.body
        assert "Set-Cookie" not in page.headers
        assert "<form" not in call(app, "/").body
        assert store.read_audit_log() == [] and store.read_snapshot().paused == {}
        assert app.acting._store is None  # not even opened
    finally:
        app.close()


def test_a_wrong_or_missing_token_is_401_and_nothing_is_echoed(
    app: StatusApp, store: StateStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = base64.b64encode(b"alice:wrong").decode()
    for headers in ({}, {"AUTHORIZATION": "Bearer wrong"}, {"AUTHORIZATION": f"Basic {wrong}"}):
        reply = post_json(app, api("load", "pause"), {"reason": "x"}, **headers)
        assert reply.status == 401, headers
        assert reply.headers["WWW-Authenticate"].startswith("Basic")
    assert store.read_audit_log() == []
    post_json(app, api("load", "pause"), {"reason": "x"}, **BEARER)
    call(app, "/jobs/load", method="POST", body=b"action=pause", content_type=FORM, **BASIC)
    assert TOKEN not in caplog.text and TOKEN not in str(store.read_audit_log())


def test_only_post_acts(app: StatusApp, store: StateStore) -> None:
    for method in ("GET", "HEAD", "PUT", "DELETE"):
        reply = call(app, api("load", "pause"), method=method, **BEARER)
        assert reply.status == 405, method
        assert reply.headers["Allow"] == "POST"
    assert call(app, "/jobs/load", method="PUT", **BEARER).headers["Allow"] == "GET, HEAD, POST"
    for path in ("/api/jobs", "/api/jobs/load/runs", "/api/jobs/load/explode", "/metrics", "/"):
        reply = post_json(app, path, {}, **BEARER)
        assert reply.status == 405, path
        assert reply.headers["Allow"] == "GET, HEAD"
    assert store.read_audit_log() == []


def csrf_of(html: str) -> str:
    tokens = set(re.findall(r'name="csrf_token" value="([0-9a-f]+)"', html))
    assert len(tokens) == 1, tokens
    return tokens.pop()


def session_of(reply: Reply) -> str:
    cookie = reply.headers["Set-Cookie"]
    return cookie.split(";", 1)[0]  # crontabber_session=ID


def post_form(app: StatusApp, name: str, fields: dict[str, str], **headers: str) -> Reply:
    body = urlencode(fields).encode()
    return call(
        app, f"/jobs/{quote(name, safe='')}", method="POST", body=body, content_type=FORM, **headers
    )


def test_the_pages_forms_act_with_the_cookie_and_csrf_token(
    app: StatusApp, store: StateStore
) -> None:
    page = call(app, "/jobs/load", **BASIC)
    assert page.status == 200
    flags = [part.strip() for part in page.headers["Set-Cookie"].split(";")]
    assert flags[0].startswith("crontabber_session=") and len(flags[0]) > 40
    assert set(flags[1:]) == {"Path=/", "HttpOnly", "SameSite=Strict"}  # no Secure over http
    cookie, csrf = session_of(page), csrf_of(page.body)
    assert {"pause", "run-now", "reset"} <= set(re.findall(r'data-action="([\w-]+)"', page.body))
    assert 'data-action="resume"' not in page.body  # load is not paused
    assert 'name="confirm" value="yes" required' in page.body
    again = call(app, "/jobs/load", COOKIE=cookie, **BASIC)
    assert "Set-Cookie" not in again.headers and csrf_of(again.body) == csrf
    fields = {"action": "pause", "reason": HOSTILE_REASON, "until": "3d", "csrf_token": csrf}

    # Not confirmed: nothing done, and the page says why.
    refused = post_form(app, "load", fields, COOKIE=cookie, **BASIC)
    assert refused.status == 303
    said = call(app, refused.headers["Location"], COOKIE=cookie, **BASIC).body
    assert '<p class="said said-refused" role="status">not done: tick the box' in said
    assert store.read_snapshot().paused == {}

    done = post_form(app, "load", {**fields, "confirm": "yes"}, COOKIE=cookie, **BASIC)
    assert done.status == 303
    location = urlsplit(done.headers["Location"])
    assert location.path == "/jobs/load"
    assert parse_qs(location.query)["outcome"] == ["done"]
    pause = store.read_snapshot().paused["load"]
    assert (pause.actor, pause.reason) == (BY_PAGE, HOSTILE_REASON)
    shown = call(app, done.headers["Location"], COOKIE=cookie, **BASIC).body
    assert "<script>alert" not in shown and "<b>why" not in shown
    assert re.search(
        r'<p class="said said-done" role="status">paused load until [^<]+ \(&lt;script', shown
    )
    assert '<span class="badge badge-paused">paused</span>' in shown
    assert 'data-action="resume"' in shown and 'data-action="run-now"' not in shown
    audit_rows = re.findall(
        r'<tr class="audit-row" data-action="(\w+)">.*?class="actor">([^<]*)<', shown, re.S
    )
    assert audit_rows == [("pause", BY_PAGE)]

    # A link made elsewhere, or for another session, makes the page say nothing.
    forged = done.headers["Location"].replace("outcome=done", "outcome=refused")
    assert "said-" not in call(app, forged, COOKIE=cookie, **BASIC).body
    other = session_of(call(app, "/jobs/load", **BASIC))
    assert "said-" not in call(app, done.headers["Location"], COOKIE=other, **BASIC).body
    assert 'class="said' not in call(app, "/jobs/load?outcome=done&said=all+is+well", **BASIC).body

    resumed = post_form(
        app,
        "load",
        {"action": "resume", "confirm": "yes", "csrf_token": csrf},
        COOKIE=cookie,
        **BASIC,
    )
    assert resumed.status == 303 and store.read_snapshot().paused == {}
    # A refusal comes back to the page too.
    again = post_form(
        app,
        "load",
        {"action": "resume", "confirm": "yes", "csrf_token": csrf},
        COOKIE=cookie,
        **BASIC,
    )
    assert "load is not paused" in call(app, again.headers["Location"], COOKIE=cookie, **BASIC).body
    assert [row[:2] for row in audit(store, "load")] == [("pause", BY_PAGE), ("resume", BY_PAGE)]
    assert (
        post_form(
            app, "nope", {"action": "pause", "csrf_token": csrf}, COOKIE=cookie, **BASIC
        ).status
        == 404
    )


def test_a_browsers_post_without_its_csrf_token_is_refused(
    app: StatusApp, store: StateStore
) -> None:
    page = call(app, "/jobs/load", **BASIC)
    cookie, csrf = session_of(page), csrf_of(page.body)
    other = call(app, "/jobs/load", **BASIC)
    fields = {"action": "pause", "confirm": "yes"}
    attempts = [
        ({**fields}, {"COOKIE": cookie}),  # no token
        ({**fields, "csrf_token": "0" * 64}, {"COOKIE": cookie}),  # a made-up one
        ({**fields, "csrf_token": csrf}, {}),  # no cookie (SameSite=Strict: cross-site)
        ({**fields, "csrf_token": csrf}, {"COOKIE": session_of(other)}),  # another session's
        ({**fields, "csrf_token": csrf_of(other.body)}, {"COOKIE": cookie}),
    ]
    for form, headers in attempts:
        reply = post_form(app, "load", form, **headers, **BASIC)
        assert reply.status == 403, (form, headers)
        assert "missing or bad CSRF token" in reply.body
    # The API with basic authentication, too: a page's script may send it unasked.
    assert post_json(app, api("load", "pause"), {}, COOKIE=cookie, **BASIC).status == 403
    assert store.read_snapshot().paused == {} and store.read_audit_log() == []
    # With the session's token, in a header, the API acts for a browser's script.
    reply = post_json(app, api("load", "pause"), {}, COOKIE=cookie, X_CSRF_TOKEN=csrf, **BASIC)
    assert reply.status == 200, reply.body
    assert store.read_snapshot().paused["load"].actor == BY_PAGE
    # Or in the body.
    reply = post_json(app, api("load", "resume"), {"csrf_token": csrf}, COOKIE=cookie, **BASIC)
    assert reply.status == 200, reply.body
    # A bearer token needs no CSRF token: no browser sends one by itself.
    assert post_json(app, api("load", "pause"), {}, **BEARER).status == 200
    assert [action for action, _, _ in audit(store, "load")] == ["pause", "resume", "pause"]


def test_the_cookie_is_secure_over_https(app: StatusApp) -> None:
    page = call(app, "/jobs/load", scheme="https", **BASIC)
    assert "Secure" in [part.strip() for part in page.headers["Set-Cookie"].split(";")]


def test_the_page_api_and_metrics_show_pauses_and_asked_actions(
    app: StatusApp, store: StateStore, specs: list[JobSpec]
) -> None:
    post_json(app, api("load", "pause"), {"reason": HOSTILE_REASON}, **BEARER)
    post_json(app, api("extract", "run-now"), **BEARER)
    post_json(app, api("sweeper", "cancel"), **BEARER)
    post_json(app, api("stale", "pause"), **BEARER)  # two hours past due: no longer late
    jobs = {job["app_name"]: job for job in call(app, "/api/jobs", **BEARER).json()["jobs"]}
    assert jobs["load"]["paused"]["reason"] == HOSTILE_REASON
    assert jobs["load"]["paused"]["by"] == BY_SCRIPT and jobs["load"]["paused"]["until"] is None
    assert jobs["extract"]["paused"] is None and jobs["extract"]["run_now_asked"] is not None
    assert jobs["sweeper"]["cancel_asked"] is not None
    assert jobs["report"]["status_detail"] == "dependency 'load' is paused"
    assert jobs["stale"]["paused"] is not None and jobs["stale"]["late"] is False
    index = call(app, "/", **BEARER).body
    assert "<script>alert" not in index
    assert "paused until resumed, by 127.0.0.1 (web, bearer token): &lt;script&gt;" in index
    assert index.count('class="badge badge-paused"') == 2
    assert index.count(">run now asked<") == 1 and index.count(">cancel asked<") == 1
    assert "<strong>2</strong> paused" in index and "<strong>0</strong> late" in index
    job = call(app, "/jobs/load", **BEARER).body
    assert '<dd class="paused">until resumed, by 127.0.0.1 (web, bearer token): &lt;script' in job
    assert 'class="run-now-asked"' in call(app, "/jobs/extract", **BEARER).body
    sweeper = call(app, "/jobs/sweeper", **BEARER).body
    assert 'class="cancel-asked"' in sweeper
    assert 'data-action="cancel"' in sweeper and 'data-action="reset"' not in sweeper
    metrics = call(app, "/metrics", **BEARER).body
    paused = {
        sample.labels["app_name"]: sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "crontabber_job_paused"
    }
    assert paused == {spec.app_name: float(spec.app_name in ("load", "stale")) for spec in specs}


class Chatty(App):
    app_name = "chatty"

    def run(self) -> None:
        logging.getLogger("chatty").info('<script>alert("output")</script> & done')


def test_a_jobs_runs_show_where_how_and_what_they_printed(store: StateStore) -> None:
    specs = [make_spec(Chatty)]
    Runner(specs, store).run(force=True)
    app = web.create_app(store, specs)  # a store to read and act through as it is
    try:
        runs = call(app, "/api/jobs/chatty/runs").json()["runs"]
        (run,) = runs
        assert run["host"] and isinstance(run["pid"], int)
        assert run["trigger"] == "forced" and run["outcome"] == "succeeded"
        assert '<script>alert("output")</script> & done' in run["output"]
        assert {"started", "finished", "error", "error_type", "log_time", "failed"} <= set(run)
        page = call(app, "/jobs/chatty").body
        assert "<script>alert" not in page
        assert re.search(r'<pre class="output">[^<]*&lt;script&gt;alert\(&#34;output', page)
        assert f"{run['host']} pid {run['pid']}" in page
        assert '<td data-label="Trigger">forced</td>' in page
        assert "No operator has acted on chatty." in page
    finally:
        app.close()


def test_a_store_given_as_it_is_acts_too(store: StateStore, specs: list[JobSpec]) -> None:
    populate(store, specs)
    app = web.create_app(store, specs, auth_token=TOKEN)
    try:
        assert post_json(app, api("load", "pause"), **BEARER).status == 200
        assert app.acting.store() is store
    finally:
        app.close()
    assert "load" in store.read_snapshot().paused


@pytest.mark.postgres
def test_an_unmigrated_database_is_not_migrated_by_an_action(
    pg_url: str, specs: list[JobSpec]
) -> None:
    app = web.create_app(pg_url, specs, auth_token=TOKEN)
    try:
        reply = post_json(app, api("load", "pause"), {"reason": "x"}, **BEARER)
        assert reply.status == 503
        assert reply.json()["error"].startswith("the state database could not be written")
    finally:
        app.close()
    store = open_store(pg_url, auto_migrate=False)
    try:
        with store.engine.connect() as conn:
            tables = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
            ).scalar()
        assert tables == 0
    finally:
        store.close()


def test_an_action_creates_no_sqlite_file(tmp_path: Path, specs: list[JobSpec]) -> None:
    path = tmp_path / "absent.sqlite"
    app = web.create_app(f"sqlite:///{path}", specs, auth_token=TOKEN)
    try:
        reply = post_json(app, api("load", "pause"), {"reason": "x"}, **BEARER)
    finally:
        app.close()
    assert reply.status == 503 and "does not exist" in reply.json()["error"]
    assert not path.exists()


def test_hostile_names_act_and_show_as_text(app: StatusApp, store: StateStore) -> None:
    reply = post_json(app, api(HOSTILE_NAME, "pause"), {"reason": "r"}, **BEARER)
    assert reply.status == 200 and HOSTILE_NAME in reply.json()["message"]
    page = call(app, f"/jobs/{quote(HOSTILE_NAME, safe='')}", **BASIC)
    assert "<script>alert" not in page.body
    form_action = re.search(r'<form method="post" action="([^"]+)"', page.body)
    assert form_action and unescape(form_action.group(1)) == f"/jobs/{quote(HOSTILE_NAME, safe='')}"
    cookie, csrf = session_of(page), csrf_of(page.body)
    fields = {"action": "resume", "confirm": "yes", "csrf_token": csrf}
    done = post_form(app, HOSTILE_NAME, fields, COOKIE=cookie, **BASIC)
    assert done.status == 303 and HOSTILE_NAME not in store.read_snapshot().paused
    assert urlsplit(done.headers["Location"]).path == f"/jobs/{quote(HOSTILE_NAME, safe='')}"
