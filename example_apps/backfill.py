"""A backfill job: ``run(date)`` is called once for every interval it missed.

If crontabber did not run for three days, the next run calls ``run`` three
times, oldest date first, and records each date as it succeeds; ``run`` is
never called twice for the same date.
"""

from __future__ import annotations

import datetime as dt
import logging

from crontabber import App
from crontabber.mixins import as_backfill_cron_app

log = logging.getLogger(__name__)


@as_backfill_cron_app
class DailySummaryApp(App):
    app_name = "daily-summary"

    def run(self, date: dt.datetime) -> None:
        log.info("summarising the day before %s", date.isoformat())
