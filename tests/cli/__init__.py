"""The ``crontabber`` command as a user runs it (or ``crontabber.cli.main``, as the
command does): configuration, admin commands, output, compatibility with the
original crontabber's apps and ini files, and the examples."""
