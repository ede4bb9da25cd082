"""The smallest jobs: one that runs on its own, and one that depends on it."""

from __future__ import annotations

import datetime as dt
import logging

from crontabber import App

log = logging.getLogger(__name__)


class HelloApp(App):
    """A plain job: logs a line each time it runs."""

    app_name = "hello"

    def run(self) -> None:
        log.info("hello from crontabber at %s", dt.datetime.now(dt.timezone.utc).isoformat())


class AfterHelloApp(App):
    """A dependent job: runs only after ``hello`` has run successfully."""

    app_name = "after-hello"
    depends_on = "hello"

    def run(self) -> None:
        log.info("hello ran, so after-hello runs too")
