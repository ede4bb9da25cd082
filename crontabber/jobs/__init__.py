"""crontabber.jobs."""
