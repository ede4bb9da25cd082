"""A job that runs a command: ``self.run_process`` comes from ``with_subprocess``.

[crontabber]
jobs = example_apps.subprocess_job.DiskUsageApp|1h
  [[class-DiskUsageApp]]
  path = /var/lib/postgresql
  timeout_seconds = 30
"""

from __future__ import annotations

import logging

from configman import Namespace

from crontabber import App
from crontabber.mixins import with_subprocess

log = logging.getLogger(__name__)


@with_subprocess
class DiskUsageApp(App):
    """Logs the disk usage of ``path``; fails when ``df`` does.

    A list runs ``df`` directly, so ``path`` is never interpreted by a shell.
    After ``timeout_seconds`` the command is killed and ``run_process`` raises
    ``crontabber.mixins.ProcessTimeout``, which fails the run.
    """

    app_name = "disk-usage"
    required_config = Namespace()
    required_config.add_option("path", default="/", doc="the file system to report on")
    required_config.add_option("timeout_seconds", default=60.0, doc="seconds before df is killed")

    def run(self) -> None:
        exit_code, stdout, stderr = self.run_process(
            ["df", "-h", str(self.config.path)], timeout=float(self.config.timeout_seconds)
        )
        if exit_code != 0:
            raise RuntimeError(f"df exited with {exit_code}: {stderr}")
        log.info("disk usage of %s:\n%s", self.config.path, stdout)
