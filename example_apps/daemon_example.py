"""A job for daemon mode: every 30 seconds, which a crontab line could not do.

Run it with ``crontabber --admin.conf=example_apps/daemon.ini --daemon`` and stop
it with Ctrl-C (SIGINT): the daemon lets a running job finish first.
"""

from __future__ import annotations

import datetime as dt
import logging

from crontabber import App

log = logging.getLogger(__name__)


class PulseApp(App):
    """Logs a line every 30 seconds."""

    app_name = "pulse"

    def run(self) -> None:
        log.warning("pulse at %s", dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
