"""The status page (crontabber.web): its HTML, JSON and metrics over jobs in every state,
on both stores; read-only by construction; hostile names shown as text; the
database going away and coming back; the token; serving in a process of its own."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg2
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from crontabber import status as admin
from crontabber import web
from crontabber.jobs.schedule import CronSchedule, FrequencySchedule, parse_zone
from crontabber.jobs.spec import JobSpec
from crontabber.store import StateStore, open_store
from crontabber.web.app import StatusApp
from crontabber.web.reader import read_only_store
from crontabber.web.views import Status, schedule_in_words

from ..helpers.apps import EXTRACT_RUNS, HOSTILE_ERROR, HOSTILE_NAME, Extract, job_specs, populate
from ..helpers.command import crontabber_command, run_crontabber, write_config
from ..helpers.specs import make_spec
from ..helpers.wsgi import Reply, call

UTC = dt.timezone.utc


# The state each job is left in by populate().
EXPECTED = {
    "extract": Status.OK,
    "load": Status.FAILING,
    "report": Status.HELD_BACK,
    "sweeper": Status.RUNNING,
    "stale": Status.OK,
    "newcomer": Status.NEVER_RUN,
    HOSTILE_NAME: Status.FAILING,
}


def get(app: StatusApp, path: str, *, method: str = "GET", **headers: str) -> Reply:
    """One request straight through the WSGI callable."""
    return call(app, path, method=method, **headers)


@pytest.fixture
def specs() -> list[JobSpec]:
    return job_specs()


@pytest.fixture
def app(store: StateStore, specs: list[JobSpec]) -> Iterator[StatusApp]:
    populate(store, specs)
    application = web.create_app(store.url.text, specs)
    yield application
    application.close()


def rows_by_status(html: str) -> dict[str, str]:
    found = re.findall(
        r'<tr class="job [^"]*" data-status="([\w-]+)">\s*<td data-label="Job">'
        r'<a class="job-name" href="[^"]*">([^<]*)</a>',
        html,
    )
    return {name: status for status, name in found}


def unescape(text: str) -> str:
    import html

    return html.unescape(text)


def test_the_page_shows_every_job_in_dependency_order_with_its_state(app: StatusApp) -> None:
    reply = get(app, "/")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    states = {unescape(name): status for name, status in rows_by_status(reply.body).items()}
    assert states == {name: status.css for name, status in EXPECTED.items()}
    order = [unescape(name) for name in rows_by_status(reply.body)]
    assert order.index("extract") < order.index("load") < order.index("report")
    body = reply.body
    assert "every day at 03:00 Europe/Berlin" in body
    assert "<code>1d|03:00|Europe/Berlin</code>" in body
    assert "on worker-7 pid 4321, last heartbeat " in body  # running: where, and how lately
    assert "dependency &#39;load&#39; failed last time" in body  # held back: by what
    assert body.count('class="badge badge-late">late<') == 1  # stale is 2 hours past due
    # The last error, its traceback folded in place.
    assert '<span class="exc-type">ValueError</span>: <span class="exc-value">bad row 42' in body
    assert "Traceback (most recent call last)" in body
    assert "<title>(2 failing) crontabber</title>" in body
    assert "<strong>1</strong> running" in body and "<strong>1</strong> held back" in body
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="graph"' in body
    assert 'data-status="failing" data-app="load"' in body  # the graph, coloured by state
    assert "due now" in body  # newcomer, never run: due at once
    # It refreshes itself through the fragment, which is the same table.
    assert 'data-refresh-url="/fragments/status"' in body
    fragment = get(app, "/fragments/status")
    assert fragment.status == 200 and rows_by_status(fragment.body) == rows_by_status(body)
    assert "<html" not in fragment.body


def test_the_json_has_the_fields_of_list_jobs_json(app: StatusApp, store: StateStore) -> None:
    reply = get(app, "/api/jobs")
    assert reply.status == 200 and reply.headers["Content-Type"] == "application/json"
    data = json.loads(reply.body)
    snapshot = store.read_snapshot()
    listings = admin.list_jobs(job_specs(), snapshot.states)
    assert [job["app_name"] for job in data["jobs"]] == [item.spec.app_name for item in listings]
    for job, listing in zip(data["jobs"], listings, strict=True):
        assert {key: job[key] for key in listing.as_dict()} == listing.as_dict()
        assert job["status"] == EXPECTED[job["app_name"]].value
    by_name = {job["app_name"]: job for job in data["jobs"]}
    assert by_name["sweeper"]["ongoing"]["host"] == "worker-7"
    assert by_name["sweeper"]["heartbeat"] is not None
    assert by_name["load"]["last_error"]["value"] == "bad row 42"
    assert by_name["stale"]["late"] is True and by_name["extract"]["late"] is False
    assert by_name["report"]["status_detail"] == "dependency 'load' failed last time"
    assert dt.datetime.fromisoformat(data["now"]).tzinfo is not None


def test_a_jobs_runs_are_paged_newest_first(app: StatusApp) -> None:
    first = json.loads(get(app, "/api/jobs/extract/runs?per_page=2").body)
    second = json.loads(get(app, "/api/jobs/extract/runs?per_page=2&page=2").body)
    last = json.loads(get(app, "/api/jobs/extract/runs?per_page=2&page=3").body)
    assert first["total"] == EXTRACT_RUNS and first["page"] == 1
    runs = first["runs"] + second["runs"] + last["runs"]
    assert len(runs) == EXTRACT_RUNS
    times = [run["log_time"] for run in runs]
    assert times == sorted(times, reverse=True)
    assert all(run["failed"] is False and run["duration_seconds"] >= 0 for run in runs)
    failed = json.loads(get(app, "/api/jobs/load/runs").body)["runs"]
    assert failed[0]["failed"] is True and failed[0]["exc_type"] == "ValueError"
    assert "Traceback" in failed[0]["exc_traceback"]
    assert get(app, "/api/jobs/nope/runs").status == 404
    assert get(app, "/api/jobs/extract/runs?page=0").status == 400
    assert get(app, "/api/jobs/extract/runs?per_page=x").status == 400


def test_a_jobs_page_has_its_history_with_a_chart(app: StatusApp) -> None:
    reply = get(app, "/jobs/extract?per_page=2")
    assert reply.status == 200
    body = reply.body
    assert f"{EXTRACT_RUNS} runs in crontabber_log; page 1 of 3" in body
    assert body.count('class="point succeeded"') == 2  # the chart covers the page's runs
    assert 'rel="next" href="?page=2&amp;per_page=2"' in body and 'rel="prev"' not in body
    load = get(app, "/jobs/load").body
    assert load.count('class="point failed"') == 1
    assert "bad row 42" in load
    assert get(app, "/jobs/nope").status == 404
    assert get(app, "/graph").status == 200
    picture = get(app, "/graph.svg")
    assert picture.headers["Content-Type"].startswith("image/svg+xml")
    assert picture.body.startswith("<svg")


@pytest.mark.postgres
def test_metrics_for_prometheus(pg_store: StateStore, specs: list[JobSpec]) -> None:
    populate(pg_store, specs)
    app = web.create_app(pg_store.url.text, specs)
    reply = get(app, "/metrics")
    app.close()
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/plain")
    samples = {
        (sample.name, sample.labels.get("app_name")): sample.value
        for family in text_string_to_metric_families(reply.body)
        for sample in family.samples
    }
    states = pg_store.load_states()
    assert samples[("crontabber_database_up", None)] == 1
    assert samples[("crontabber_job_ongoing", "sweeper")] == 1
    assert samples[("crontabber_job_ongoing", "extract")] == 0
    assert samples[("crontabber_job_error_count", "load")] == 1
    assert samples[("crontabber_job_failing", "load")] == 1
    assert samples[("crontabber_job_held_back", "report")] == 1
    assert samples[("crontabber_job_late", "stale")] == 1
    assert samples[("crontabber_job_runs_total", "extract")] == EXTRACT_RUNS
    assert samples[("crontabber_job_failures_total", "load")] == 1
    assert samples[("crontabber_job_failures_total", "extract")] == 0
    assert samples[("crontabber_job_last_success_timestamp_seconds", "extract")] == pytest.approx(
        states["extract"].last_success.timestamp()
    )
    assert samples[("crontabber_job_last_run_timestamp_seconds", "stale")] == pytest.approx(
        states["stale"].last_run.timestamp()
    )
    assert samples[("crontabber_job_next_run_timestamp_seconds", "load")] == pytest.approx(
        states["load"].next_run.timestamp()
    )
    assert samples[("crontabber_job_last_duration_seconds", "extract")] >= 0
    assert ("crontabber_job_last_success_timestamp_seconds", "newcomer") not in samples
    assert ("crontabber_job_ongoing", HOSTILE_NAME) in samples  # label values are escaped


def test_hostile_names_and_errors_are_shown_as_text(app: StatusApp) -> None:
    pages = [
        "/",
        "/fragments/status",
        f"/jobs/{quote(HOSTILE_NAME, safe='')}",
        "/graph",
        "/graph.svg",
    ]
    for path in pages:
        reply = get(app, path)
        assert reply.status == 200, path
        assert "<script>alert" not in reply.body, path
        assert "<b>bold" not in reply.body, path
        assert "&lt;script&gt;alert(&#34;name&#34;)&lt;/script&gt;" in reply.body, path
    error = get(app, f"/jobs/{quote(HOSTILE_NAME, safe='')}").body
    assert "&lt;script&gt;alert(&#34;error&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold" in error
    runs = json.loads(get(app, f"/api/jobs/{quote(HOSTILE_NAME, safe='')}/runs").body)
    assert runs["runs"][0]["exc_value"] == HOSTILE_ERROR  # JSON carries it as data
    assert "<script>x" not in get(app, "/jobs/%3Cscript%3Ex").body  # even in a 404


def table_contents(store: StateStore) -> tuple[list[tuple], list[tuple]]:
    with store.engine.connect() as conn:
        states = conn.exec_driver_sql("SELECT * FROM crontabber ORDER BY app_name").all()
        logged = conn.exec_driver_sql("SELECT * FROM crontabber_log ORDER BY id").all()
    return [tuple(row) for row in states], [tuple(row) for row in logged]


def test_nothing_the_page_serves_writes(app: StatusApp, store: StateStore) -> None:
    before = table_contents(store)
    for path in ("/", "/fragments/status", "/jobs/load", "/api/jobs", "/metrics", "/healthz"):
        assert get(app, path).status == 200, path
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert get(app, "/api/jobs", method=method).status == 405
    assert get(app, "/", method="HEAD").body == ""
    assert table_contents(store) == before


def test_the_pages_connection_cannot_write(store: StateStore) -> None:
    reader = read_only_store(store.url.text)
    connection = reader._connect()
    try:
        if store.dialect_name == "postgresql":
            with (
                pytest.raises(psycopg2.errors.ReadOnlySqlTransaction),
                connection.cursor() as cursor,
            ):
                cursor.execute("DELETE FROM crontabber")
        else:
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                connection.execute("DELETE FROM crontabber")
    finally:
        reader.close()


def test_a_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "absent.sqlite"
    app = web.create_app(f"sqlite:///{path}", job_specs())
    reply = get(app, "/healthz")
    app.close()
    assert reply.status == 503 and not path.exists()


@pytest.mark.postgres
def test_down_database_says_so_without_secrets_and_recovers(
    pg_admin_engine: sa.Engine, specs: list[JobSpec]
) -> None:
    name = f"crontabber_test_{uuid.uuid4().hex[:12]}"
    url = pg_admin_engine.url.set(database=name, password="s3cret-pw")
    text = url.render_as_string(hide_password=False)
    app = web.create_app(text, specs)
    try:
        health = get(app, "/healthz")
        assert health.status == 503
        assert health.body == "the state database does not answer\n"
        for path in ("/", "/api/jobs", "/jobs/extract", "/fragments/status"):
            reply = get(app, path)
            assert reply.status == 503, path
            assert "does not answer" in reply.body
            assert "s3cret" not in reply.body and name not in reply.body, path
            assert "127.0.0.1" not in reply.body and "postgres" not in reply.body, path
        metrics = get(app, "/metrics")
        assert metrics.status == 200 and "crontabber_database_up 0.0" in metrics.body
        assert "crontabber_job_" not in metrics.body
        # The database comes (back): the same app answers, with no restart.
        with pg_admin_engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        assert get(app, "/healthz").status == 503  # no schema yet: the page does not migrate
        store = open_store(text)
        store.ensure_schema()
        store.close()
        assert get(app, "/healthz").body == "ok\n"
        assert get(app, "/").status == 200
        assert rows_by_status(get(app, "/").body)["extract"] == "never-run"
    finally:
        app.close()
        with pg_admin_engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_token_guards_every_page_but_the_health_check(sqlite_url: str) -> None:
    import base64

    app = web.create_app(sqlite_url, job_specs(), auth_token="t0ken")
    open_store(sqlite_url).ensure_schema()
    try:
        assert get(app, "/").status == 401
        assert get(app, "/").headers["WWW-Authenticate"].startswith("Basic")
        assert get(app, "/metrics", AUTHORIZATION="Bearer wrong").status == 401
        assert get(app, "/metrics", AUTHORIZATION="Bearer t0ken").status == 200
        basic = base64.b64encode(b"anyone:t0ken").decode()
        assert get(app, "/", AUTHORIZATION=f"Basic {basic}").status == 200
        assert get(app, "/static/app.js").status == 401
        assert get(app, "/healthz").status == 200
    finally:
        app.close()


def test_serving_beyond_loopback_needs_a_token() -> None:
    with pytest.raises(web.WebConfigError) as refused:
        web.check_bind("0.0.0.0", "")
    message = str(refused.value)
    assert "web.auth_token" in message and "\n" not in message
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        web.check_bind(host, "")
    web.check_bind("0.0.0.0", "t0ken")
    with pytest.raises(web.WebConfigError):
        web.check_bind("example.org", "")
    app = web.create_app("sqlite:///unused.sqlite", [])
    with pytest.raises(web.WebConfigError, match=r"web\.auth_token"):
        web.start_server(app, "0.0.0.0", 0)  # refused before binding anything


def test_scripts_and_styles_ship_in_the_package(app: StatusApp) -> None:
    script, style = get(app, "/static/app.js"), get(app, "/static/style.css")
    assert script.status == 200 and script.headers["Content-Type"].startswith("text/javascript")
    assert style.status == 200 and style.headers["Content-Type"].startswith("text/css")
    assert get(app, "/static/../app.py").status == 404
    page = get(app, "/")
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page.body
    assert not re.search(r'(src|href)="(https?:)?//', page.body)  # nothing from elsewhere
    assert '<noscript><meta http-equiv="refresh"' in page.body


@pytest.mark.parametrize("database", ["answers", "down"])
def test_serve_runs_until_sigterm(database: str, sqlite_url: str) -> None:
    """In a process of its own, as ``--serve`` runs it; it starts while the database is
    down, and says so."""
    import urllib.error
    import urllib.request

    if database == "answers":
        open_store(sqlite_url).ensure_schema()
        url = sqlite_url
    else:
        url = "postgresql://postgres:s3cret-pw@127.0.0.1:9/nowhere"  # port 9: nobody listens
    code = (
        "import sys; from crontabber.web import serve; "
        "sys.exit(serve(sys.argv[1], [], host='127.0.0.1', port=0))"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("crontabber: serving the status page on http://127.0.0.1:"), line
        root = line.split(" on ", 1)[1].strip()
        if database == "answers":
            with urllib.request.urlopen(root + "healthz", timeout=10) as reply:
                assert reply.status == 200 and reply.read() == b"ok\n"
                assert reply.headers["Server"] == "crontabber"
            with urllib.request.urlopen(root, timeout=10) as reply:
                assert b"No jobs are configured" in reply.read()
        else:
            for path in ("healthz", ""):
                with pytest.raises(urllib.error.HTTPError) as failed:
                    urllib.request.urlopen(root + path, timeout=10)
                assert failed.value.code == 503
                text = failed.value.read().decode()
                failed.value.close()
                assert "the state database does not answer" in text
                assert "s3cret" not in text and "nowhere" not in text
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        assert "s3cret" not in process.stderr.read()
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
        process.stderr.close()


def test_names_with_slashes_and_accents_through_the_real_server(sqlite_url: str) -> None:
    import urllib.request

    open_store(sqlite_url).ensure_schema()
    names = ["café/x", "a b%2F", "x/runs"]
    specs = [
        JobSpec(name, Extract, make_spec(Extract).class_path, make_spec(Extract).schedule)
        for name in names
    ]
    server = web.start_server(web.create_app(sqlite_url, specs), "127.0.0.1", 0)
    try:
        for name in names:
            quoted = quote(name, safe="")
            with urllib.request.urlopen(f"{server.url}/jobs/{quoted}", timeout=10) as reply:
                assert reply.status == 200
            with urllib.request.urlopen(
                f"{server.url}/api/jobs/{quoted}/runs", timeout=10
            ) as reply:
                assert json.loads(reply.read())["app_name"] == name
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        (
            FrequencySchedule(dt.timedelta(days=1), dt.time(3, 0), parse_zone("Europe/Berlin")),
            "every day at 03:00 Europe/Berlin",
        ),
        (FrequencySchedule(dt.timedelta(minutes=5)), "every 5 minutes"),
        (FrequencySchedule(dt.timedelta(hours=1)), "every hour"),
        (FrequencySchedule(dt.timedelta(days=7)), "every week"),
        (FrequencySchedule(dt.timedelta(seconds=90)), "every 90 seconds"),
        (
            CronSchedule("0 2 * * MON-FRI", parse_zone("Europe/Berlin")),
            "at 02:00 on weekdays Europe/Berlin",
        ),
        (CronSchedule("30 4 * * *"), "every day at 04:30 UTC"),
        (CronSchedule("*/15 * * * *"), "every 15 minutes"),
        (CronSchedule("7 * * * *"), "every hour at minute 7"),
        (CronSchedule("@daily"), "every day at 00:00 UTC"),
        (CronSchedule("0 0 1,15 * *"), "when cron(0 0 1,15 * *) matches in UTC"),
    ],
)
def test_schedules_in_words(schedule: object, words: str) -> None:
    spec = JobSpec("job", Extract, make_spec(Extract).class_path, schedule)  # type: ignore[arg-type]
    assert schedule_in_words(spec) == words


def test_the_command_refuses_to_serve_beyond_loopback_without_a_token(tmp_path: Path) -> None:

    config = write_config(tmp_path, "")
    for command in (["--serve"], ["--daemon", "--web.port=0"]):
        result = run_crontabber(
            f"--admin.conf={config}", *command, "--web.host=0.0.0.0", cwd=tmp_path
        )
        assert result.status == 1, (command, result.stderr)
        assert "web.auth_token" in result.stderr.splitlines()[-1]
        assert result.stderr.splitlines()[-1].startswith("crontabber: ")


def test_the_serve_command_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    import socket
    import time
    import urllib.request

    config = write_config(tmp_path, "")
    run_crontabber(f"--admin.conf={config}", "--migrate", cwd=tmp_path)  # the page only reads
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [*crontabber_command(), f"--admin.conf={config}", "--serve", f"--web.port={port}"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/jobs", timeout=5) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "the server never answered"
                time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
