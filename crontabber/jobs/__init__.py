"""Jobs: the class users write, its schedule, and the specs a run works from.

- :mod:`crontabber.jobs.app`: :class:`~crontabber.jobs.app.App` (``crontabber.App``);
- :mod:`crontabber.jobs.setting`: the syntax of a ``jobs`` line;
- :mod:`crontabber.jobs.schedule`: frequencies, cron expressions, time zones;
- :mod:`crontabber.jobs.spec`: a configured job, its class imported, and the
  dependency graph's order.
"""
