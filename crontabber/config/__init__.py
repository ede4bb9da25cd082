"""Configuration: crontabber's options, read from the ini file, environment and command line.

- :mod:`crontabber.config.options`: every option and command switch, once, as data;
- :mod:`crontabber.config.plain`: a tick's ini file read without configman;
- :mod:`crontabber.config.configman_edge` and :mod:`crontabber.config.configman_compat`:
  configman, and the only modules that import it;
- :mod:`crontabber.config.jobs_option`: the ``jobs`` option's value;
- :mod:`crontabber.config.job_config`: what each job's own section holds;
- :mod:`crontabber.config.state_database`: which database holds the state, never a
  SQLite file when PostgreSQL is named;
- :mod:`crontabber.config.settings`: :class:`~crontabber.config.settings.Settings`,
  the plain values everything past this package takes.
"""
