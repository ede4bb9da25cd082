"""``python -m crontabber`` is the ``crontabber`` command."""

from crontabber.cli.entry import entry_point

entry_point()
