"""``python -m crontabber`` is the ``crontabber`` command."""

from crontabber.cli import entry_point

entry_point()
