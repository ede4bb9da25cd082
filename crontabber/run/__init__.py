"""What runs jobs: a tick, the daemon, the interrupts that stop a job, and error reports.

- :mod:`crontabber.run.runner`: one tick, claiming and running each due job;
- :mod:`crontabber.run.daemon`: ticks for as long as the process lives;
- :mod:`crontabber.run.interrupts`: signals and ``max_runtime``, turned into
  exceptions inside the running job;
- :mod:`crontabber.run.error_reporting`: failures sent to Sentry.
"""
