"""Exceptions that mean "crontabber cannot work", as opposed to a job failing.

Each one carries a message fit to print as the single line a user sees; the CLI
prints it and exits with status 1, and no state has been changed.
"""

from __future__ import annotations


class CrontabberError(Exception):
    """Base class: a problem crontabber reports in one line, never a traceback."""


class ConfigError(CrontabberError):
    """The configuration is wrong: a bad jobs line, an unknown class, a cycle..."""


class StateStoreError(CrontabberError):
    """The state database cannot be reached or used."""
