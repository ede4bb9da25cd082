"""crontabber.config."""
