"""The original crontabber's ``crontabber.mixins``: the decorators that give jobs resources.

A thin re-export; the decorators live in :mod:`crontabber.resources.mixins` and
the subprocess mixin in :mod:`crontabber.resources.processes`.
"""

from __future__ import annotations

from crontabber.resources.mixins import *  # noqa: F403
from crontabber.resources.mixins import __all__  # noqa: F401
