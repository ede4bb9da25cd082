"""The named statements of ``postgresql.sql`` and ``sqlite.sql``, read once per process.

Each file holds every statement a tick sends to that database, as text, each
under a ``-- name: NAME`` line; ``{abandoned}`` in a statement is replaced by the
part named ``abandoned`` (the lease rule, written once), and likewise for the
other shared parts in ``FRAGMENTS``.
"""

from __future__ import annotations

import functools
import os
import re

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)
# The statements' shared parts, each written once: ``{name}`` in a statement (or in a
# later part) is that part. They are not statements: queries() leaves them out.
FRAGMENTS = (
    "timeline",
    "up_since",
    "abandoned",
    "paused",
    "pauses",
    "states_read",
    "claimed_by",
    "next_claim",
    "next_claim_rows",
    "finish_outcome",
    "finish_row",
)


@functools.cache
def queries(dialect: str) -> dict[str, str]:
    """Every statement of ``dialect`` ("postgresql" or "sqlite"), by name, its shared
    parts written in."""
    path = os.path.join(os.path.dirname(__file__), "sql", f"{dialect}.sql")
    with open(path, encoding="utf-8") as file:
        text = file.read()
    parts = _NAME.split(text)
    named = {
        name: _strip_comments(body) for name, body in zip(parts[1::2], parts[2::2], strict=True)
    }
    for name in FRAGMENTS:  # in order: a fragment may use those before it
        fragment = named.get(name, "")
        named = {key: body.replace(f"{{{name}}}", fragment) for key, body in named.items()}
    return {name: body for name, body in named.items() if name not in FRAGMENTS}


def _strip_comments(body: str) -> str:
    lines = [line for line in body.splitlines() if not line.lstrip().startswith("--")]
    return "\n".join(lines).strip()
