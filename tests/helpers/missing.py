"""What a test needs and this machine lacks: a skip with the reason, a failure under CI."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test, saying why; under CI=true fail it instead: CI never skips silently."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)
