"""A job on a cron schedule, in a time zone of its own.

``myconfig.ini`` lists it as
``example_apps.cron.WeekdayReportApp|cron(0 2 * * MON-FRI)|Europe/Berlin``: it
runs at 02:00 Berlin time, Monday to Friday, in winter (CET) and in summer
(CEST) alike. A job that never ran waits for its first scheduled instant of
the day, so on a weekend, or on a weekday before 02:00 in Berlin, it does not
run yet; ``crontabber --admin.conf=myconfig.ini --list-jobs`` says when it will.
"""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

from crontabber import App

log = logging.getLogger(__name__)


class WeekdayReportApp(App):
    app_name = "weekday-report"

    def run(self) -> None:
        berlin = dt.datetime.now(ZoneInfo("Europe/Berlin"))
        log.info(
            "weekday report for %s (Berlin time %s)", berlin.date(), berlin.strftime("%H:%M %Z")
        )
