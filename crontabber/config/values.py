"""How an option's value given as text is read: booleans, and values with commas."""

from __future__ import annotations

BOOLEAN_WORDS = {
    **dict.fromkeys(("true", "t", "yes", "y", "on", "1"), True),
    **dict.fromkeys(("false", "f", "no", "n", "off", "0", ""), False),
}


def parse_boolean(text: str) -> bool:
    """``True``/``false``/``1``/``no``/...; any other word is a ValueError (configman: False)."""
    word = text.strip().strip("'\"").lower()
    if word not in BOOLEAN_WORDS:
        raise ValueError(text)
    return BOOLEAN_WORDS[word]


def comma_joined(value: object) -> str:
    """A ``text`` option's value: configobj splits an unquoted value on its commas (a
    libpq URL or host list with several hosts); the parts are joined back."""
    if isinstance(value, (list, tuple)):
        return ",".join(str(part) for part in value)
    return str(value)
