"""crontabber.db."""
