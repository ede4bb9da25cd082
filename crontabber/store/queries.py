"""The named statements of ``postgresql.sql`` and ``sqlite.sql``, read once per process.

Each file holds every statement a tick sends to that database, as text, each
under a ``-- name: NAME`` line; ``{abandoned}`` in a statement is replaced by the
statement named ``abandoned`` (the lease rule, written once).
"""

from __future__ import annotations

import functools
import os
import re

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@functools.cache
def queries(dialect: str) -> dict[str, str]:
    """Every statement of ``dialect`` ("postgresql" or "sqlite"), by name."""
    path = os.path.join(os.path.dirname(__file__), "sql", f"{dialect}.sql")
    with open(path, encoding="utf-8") as file:
        text = file.read()
    parts = _NAME.split(text)
    named = {
        name: _strip_comments(body) for name, body in zip(parts[1::2], parts[2::2], strict=True)
    }
    fragment = named.get("abandoned", "")
    return {name: body.replace("{abandoned}", fragment) for name, body in named.items()}


def _strip_comments(body: str) -> str:
    lines = [line for line in body.splitlines() if not line.lstrip().startswith("--")]
    return "\n".join(lines).strip()
