"""The status page in a real headless browser: Debian's chromium through chromedriver.

It loads without console errors, marks a failing job visibly, expands a
traceback in place, draws a job's history, shows a change in the database
without a reload, and reads on a phone. With a token, an operator pauses,
resumes and asks for a run through the job page's forms; without one, the
page offers no forms. Screenshots go to .ci-artifacts/.
Without chromium and chromedriver the test skips, except under CI=true, where
it fails (.ci/run installs them).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from crontabber import web
from crontabber.jobs.spec import JobSpec
from crontabber.run.runner import Runner
from crontabber.store import StateStore

from ..helpers.apps import job_specs, populate

CHROMIUM = os.environ.get("CRONTABBER_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CRONTABBER_CHROMEDRIVER", "/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[2] / ".ci-artifacts"
WAIT = 15  # seconds, at most, for anything the page does by itself
FAILING_BACKGROUND = "rgb(253, 236, 234)"  # --failing-bg in style.css

pytestmark = pytest.mark.postgres


def browser_missing() -> str | None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    return f"no {' and no '.join(missing)} for the browser test" if missing else None


@pytest.fixture
def browser() -> Iterator[Any]:
    reason = browser_missing()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (.ci/run installs chromium and chromium-driver)")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="crontabber-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1400,1000",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        # Not UTC, so that the page's times in the browser's zone show.
        driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "Europe/Berlin"})
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


STILL = 3600  # seconds between refreshes: none while a test reads the page
TOKEN = "t0ken-for-the-browser"


@contextmanager
def serving(store: StateStore, specs: list[JobSpec], **options: Any) -> Iterator[str]:
    server = web.start_server(web.create_app(store.url.text, specs, **options), "127.0.0.1", 0)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def served(pg_store: StateStore) -> Iterator[tuple[str, str, list[JobSpec]]]:
    """The page twice over one database: still, for reading what it shows through
    element handles (a refresh replaces every element under #status, and a handle
    held across one goes stale), and live, refreshing every second."""
    specs = job_specs()
    populate(pg_store, specs)
    with (
        serving(pg_store, specs, refresh_seconds=STILL) as still,
        serving(pg_store, specs, refresh_seconds=1) as live,
    ):
        yield still, live, specs


@pytest.fixture
def served_with_token(pg_store: StateStore) -> Iterator[tuple[str, list[JobSpec]]]:
    """The page with a token, served on 127.0.0.1; its URL carries the token as the
    password of basic authentication, as an operator's browser would send it."""
    specs = job_specs()
    populate(pg_store, specs)
    with serving(pg_store, specs, auth_token=TOKEN, refresh_seconds=STILL) as url:
        yield url.replace("http://", f"http://operator:{TOKEN}@"), specs


def console_errors(driver: Any) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def screenshot(driver: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"web-{name}.png"))


def test_the_status_page_in_a_browser(
    browser: Any, served: tuple[str, str, list[JobSpec]], pg_store: StateStore
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    still, live, specs = served
    wait = WebDriverWait(browser, WAIT)
    browser.get(still + "/")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "span.local"))  # the script ran
    assert "Europe/Berlin" in browser.find_element(By.ID, "zone").text
    assert console_errors(browser) == []
    failing_job_stands_out_and_its_traceback_expands(browser)
    # The dependency graph, coloured by state.
    node = browser.find_element(By.CSS_SELECTOR, 'svg.graph a[data-app="load"] rect')
    assert node.get_attribute("fill") == "#f8c9c4"
    screenshot(browser, "status")
    a_change_shows_without_a_reload(browser, wait, live, specs, pg_store)
    a_jobs_history_is_charted(browser, still)
    it_reads_on_a_phone(browser, wait, still)


def failing_job_stands_out_and_its_traceback_expands(browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.color import Color

    load = browser.find_element(By.CSS_SELECTOR, 'tr[data-status="failing"]')
    tint = Color.from_string(load.value_of_css_property("background-color"))
    assert tint == Color.from_string(FAILING_BACKGROUND)
    assert load.find_element(By.CSS_SELECTOR, ".badge").text == "failing"
    assert browser.title.startswith("(2 failing)")
    details = browser.find_elements(By.CSS_SELECTOR, 'details.error[data-key="load"]')[0]
    traceback = details.find_element(By.CSS_SELECTOR, "pre.traceback")
    assert not traceback.is_displayed()
    details.find_element(By.TAG_NAME, "summary").click()
    assert traceback.is_displayed()
    assert "Traceback (most recent call last)" in traceback.text
    assert "ValueError: bad row 42" in traceback.text
    # Hostile text is text: no alert opened, the name reads as written.
    assert '<script>alert("name")</script>' in browser.find_element(By.TAG_NAME, "main").text


# Read in one script, so that no refresh falls between finding an element and reading it.
NEWCOMER_STATUS = """
for (const link of document.querySelectorAll("#status tr a")) {
  if (link.textContent === "newcomer") return link.closest("tr").getAttribute("data-status");
}
return null;
"""
LOAD_TRACEBACK = "document.querySelector('#status details.error[data-key=\"load\"]')"


def a_change_shows_without_a_reload(
    browser: Any, wait: Any, live: str, specs: list[JobSpec], store: StateStore
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(live + "/")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "span.local"))
    browser.execute_script("window.crontabberNotReloaded = true;")
    browser.execute_script(LOAD_TRACEBACK + ".open = true;")  # as a click on its summary
    assert browser.execute_script(NEWCOMER_STATUS) == "never-run"
    refreshed = browser.execute_script(
        "return document.getElementById('status').dataset.refreshed;"
    )
    Runner(specs, store).run(only="newcomer", force=True)

    wait.until(lambda d: d.execute_script(NEWCOMER_STATUS) == "ok")
    assert browser.execute_script("return window.crontabberNotReloaded === true;")
    assert refreshed != browser.execute_script(
        "return document.getElementById('status').dataset.refreshed;"
    )  # the script's refresh showed it
    assert browser.execute_script("return " + LOAD_TRACEBACK + ".open;")  # it stays open
    assert browser.execute_script("return document.querySelectorAll('#status span.local').length;")
    assert console_errors(browser) == []


def a_jobs_history_is_charted(browser: Any, url: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(url + "/jobs/extract")
    points = browser.find_elements(By.CSS_SELECTOR, "svg.chart .point")
    assert len(points) == 5 and all(point.is_displayed() for point in points)
    assert browser.find_elements(By.TAG_NAME, "form") == []  # no token: nothing to act with
    assert browser.find_element(By.CSS_SELECTOR, "svg.chart").size["height"] > 50
    assert console_errors(browser) == []
    screenshot(browser, "job-history")


def it_reads_on_a_phone(browser: Any, wait: Any, url: str) -> None:
    """One column of cards, nothing wider than the screen."""
    from selenium.webdriver.common.by import By

    browser.set_window_size(390, 844)
    browser.get(url + "/")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "span.local"))
    width = browser.execute_script("return document.documentElement.clientWidth;")
    assert browser.find_element(By.CSS_SELECTOR, "table.jobs").size["width"] <= width
    assert browser.find_element(By.CSS_SELECTOR, "thead").is_displayed() is False
    screenshot(browser, "phone")
    assert console_errors(browser) == []


def test_acting_from_the_job_page_in_a_browser(
    browser: Any, served_with_token: tuple[str, list[JobSpec]], pg_store: StateStore
) -> None:
    """Pause (with a reason, confirmed), see it paused and audited; resume; run now."""
    from selenium.webdriver.common.by import By

    url, _ = served_with_token
    browser.get(url + "/jobs/load")
    assert browser.find_element(By.CSS_SELECTOR, "h1 .job-name").text == "load"
    assert not browser.find_elements(By.CSS_SELECTOR, ".badge-paused")
    pause = act_form(browser, "pause")
    pause.find_element(By.NAME, "reason").send_keys("bad input upstream")
    pause.find_element(By.NAME, "until").send_keys("2h")
    # Not confirmed: the browser keeps the form (the box is required), nothing is done.
    pause.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    assert browser.execute_script("return arguments[0].checkValidity();", pause) is False
    assert pg_store.read_snapshot().paused == {}
    submit(pause)
    said = browser.find_element(By.CSS_SELECTOR, ".said")
    assert "said-done" in said.get_attribute("class")
    assert said.text.startswith("paused load until ") and said.text.endswith("(bad input upstream)")
    assert browser.find_element(By.CSS_SELECTOR, "h1 .badge-paused").text == "paused"
    assert "bad input upstream" in browser.find_element(By.CSS_SELECTOR, "dd.paused").text
    (row,) = browser.find_elements(By.CSS_SELECTOR, "tr.audit-row")
    assert row.get_attribute("data-action") == "pause"
    assert row.find_element(By.CSS_SELECTOR, ".actor").text == (
        "operator@127.0.0.1 (web, page session)"
    )
    assert pg_store.read_snapshot().paused["load"].reason == "bad input upstream"
    assert console_errors(browser) == []
    screenshot(browser, "job-paused")

    submit(act_form(browser, "resume"))
    assert browser.find_element(By.CSS_SELECTOR, ".said").text == "resumed load"
    assert not browser.find_elements(By.CSS_SELECTOR, ".badge-paused")
    assert "load" not in pg_store.read_snapshot().paused

    submit(act_form(browser, "run-now"))
    assert "said-done" in browser.find_element(By.CSS_SELECTOR, ".said").get_attribute("class")
    assert browser.find_elements(By.CSS_SELECTOR, "dd.run-now-asked")
    assert pg_store.read_snapshot().states["load"].run_now is not None
    actions = [
        row.get_attribute("data-action")
        for row in browser.find_elements(By.CSS_SELECTOR, "tr.audit-row")
    ]
    assert actions == ["run-now", "resume", "pause"]  # newest first
    # The index shows the asked-for run.
    browser.get(url + "/")
    row = browser.find_element(By.XPATH, '//tr[.//a[text()="load"]]')
    assert "run now asked" in row.text
    assert console_errors(browser) == []


def act_form(browser: Any, action: str) -> Any:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.CSS_SELECTOR, f'form.act-form[data-action="{action}"]')


def submit(form: Any) -> None:
    """Tick the form's box, send it, and wait for the page it comes back to."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = form.parent
    driver.execute_script("window.crontabberOldPage = true;")
    form.find_element(By.NAME, "confirm").click()
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    def new_page(d: Any) -> bool:
        return d.execute_script(
            "return !window.crontabberOldPage && document.readyState === 'complete' "
            "&& document.querySelector('.said') !== null;"
        )

    # While the page changes, chromedriver may say anything about the old one.
    WebDriverWait(driver, WAIT, ignored_exceptions=(WebDriverException,)).until(new_page)
