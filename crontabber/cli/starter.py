"""``crontabber --init DIR``: a starter configuration and job, so that a fresh install runs.

It writes ``DIR/crontabber.ini`` (the state in an SQLite file beside it) and
``DIR/starter_jobs.py`` (two jobs, one depending on the other), refusing to
overwrite either, and says how to run them. No configuration is read.
"""

from __future__ import annotations

import os

CONFIG = """\
# crontabber's configuration: the jobs and their schedules.
# Every option: crontabber --admin.conf=crontabber.ini --help
[crontabber]
    # The state is kept in crontabber.sqlite beside this file; for many hosts, point
    # database_url at PostgreSQL: postgresql://user@host/dbname
    jobs = '''
        starter_jobs.Hello|1m
        starter_jobs.Report|1d|06:00
    '''
"""

JOBS = '''\
"""Starter jobs: edit them, or add your own classes and list them in crontabber.ini."""

import logging

from crontabber import App

log = logging.getLogger(__name__)


class Hello(App):
    app_name = "hello"

    def run(self):
        log.info("hello from crontabber")
        print("hello from crontabber")


class Report(App):
    app_name = "report"
    depends_on = ("hello",)  # runs only while hello's last run succeeded

    def run(self):
        print("the daily report would run here")
'''


def init(directory: str) -> tuple[int, str]:
    """Write the starter files into ``directory``; the exit status and the one line to say."""
    if not directory:
        return 1, "crontabber: --init needs a directory: --init=DIR"
    files = {"crontabber.ini": CONFIG, "starter_jobs.py": JOBS}
    present = [name for name in files if os.path.exists(os.path.join(directory, name))]
    if present:
        where = os.path.join(directory, present[0])
        return 1, f"crontabber: {where} exists: not overwritten (choose another directory)"
    try:
        os.makedirs(directory, exist_ok=True)
        for name, text in files.items():
            with open(os.path.join(directory, name), "x", encoding="utf-8") as file:
                file.write(text)
    except OSError as exc:
        return 1, f"crontabber: cannot write into {directory}: {exc.strerror or exc}"
    config = os.path.join(directory, "crontabber.ini")
    return 0, (
        f"wrote {config} and {os.path.join(directory, 'starter_jobs.py')}; "
        f"run the jobs with: crontabber --admin.conf={config}"
    )


def init_argument(argv: list[str]) -> str | None:
    """The directory ``--init DIR`` or ``--init=DIR`` names ("" when none), or None
    when the command line does not ask for it."""
    for index, arg in enumerate(argv):
        if arg.startswith("--init="):
            return arg.split("=", 1)[1]
        if arg == "--init":
            following = argv[index + 1] if index + 1 < len(argv) else ""
            return "" if following.startswith("-") else following
    return None
