"""crontabber's tests, in folders by what they need.

- ``unit/``: nothing but the package (a few start fresh interpreters; the start-up
  budget in ``unit/test_startup.py`` runs the command, once on PostgreSQL).
- ``store/``: a real PostgreSQL (``pg_url``) and SQLite, in process: the state
  store, its SQL, migrations, the runner and the jobs' resources on them.
- ``cli/``: the ``crontabber`` command as a user runs it: configuration, admin
  commands, output, the original crontabber's apps and ini files, the examples.
- ``faults/``: real processes killed, signalled, raced and restarted, private
  PostgreSQL clusters, a wrong wall clock, daemons; the slow ones are marked
  ``slow``. CI runs this folder as a second invocation (``.ci/run``).
- ``web/``: the status page, and the page in a real browser.

Shared code lives in ``helpers/``, fixtures in ``conftest.py``; no test module
imports another (``unit/test_tests_layout.py`` checks).
"""
