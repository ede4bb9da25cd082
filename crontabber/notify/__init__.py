"""Telling people: events recorded once by whichever host sees them, delivered by any.

- :mod:`crontabber.notify.watch` decides which events a tick saw (a run failed,
  recovered or paused itself; a job is late or stuck), records each in the outbox
  (``crontabber_notification``, through :mod:`crontabber.store.outbox`), delivers
  pending ones, and calls the jobs' and the tick's ping URLs.
- :mod:`crontabber.notify.send` sends: a webhook's JSON POST, an e-mail, a ping;
  and reads and checks the ``[notify]`` options.

Nothing here is imported by a tick unless ``[notify]`` or a job's ``ping_url`` is set.
"""
