"""crontabber.run."""
