"""The ``crontabber`` command line: a thin layer over the library.

:mod:`crontabber.cli.entry` reads the command line and picks what to do,
:mod:`crontabber.cli.commands` holds one function per run or admin command,
:mod:`crontabber.cli.printers` formats what the library returns.
"""

from __future__ import annotations

from crontabber.cli.entry import entry_point, main

__all__ = ["entry_point", "main"]
