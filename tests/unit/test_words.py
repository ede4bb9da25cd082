"""Messages count things in words that agree: "1 job", "2 jobs"."""

from __future__ import annotations

from crontabber.words import plural


def test_one_is_singular_and_the_rest_plural() -> None:
    assert [plural(n, "job") for n in (0, 1, 2)] == ["0 jobs", "1 job", "2 jobs"]
