"""crontabber.resources."""
