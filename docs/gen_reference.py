"""Write docs/reference.md from crontabber's own tables: its options and command
switches (crontabber.config.options), its metrics (what /metrics serves) and its
database tables (crontabber.store.tables). ``python docs/gen_reference.py`` writes it;
tests/unit/test_docs.py keeps it current."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

EXIT_STATUSES = (HERE / "exit_statuses.md").read_text()


def cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def options_section() -> list[str]:
    from crontabber.config.options import COMMAND_OPTIONS, OPTIONS

    lines = [
        "## Options",
        "",
        "Set in the ini file (`[crontabber]`, `[notify]`...) or on the command line as "
        "`--section.name=value`. A secret is never printed.",
        "",
        "| option | default | what it does |",
        "| --- | --- | --- |",
    ]
    for option in OPTIONS:
        default = "" if option.secret else option.default
        shown = f"`{cell(default)}`" if default not in ("", None) else "(empty)"
        secret = " (secret)" if option.secret else ""
        lines.append(f"| `{option.name}` | {shown} | {cell(option.doc)}{secret} |")
    lines += [
        "",
        "## Command switches",
        "",
        "| switch | what it does |",
        "| --- | --- |",
    ]
    for switch in COMMAND_OPTIONS:
        short = f", `-{switch.short_form}`" if switch.short_form else ""
        lines.append(f"| `--{switch.name}`{short} | {cell(switch.doc)} |")
    return lines


def metrics_section() -> list[str]:
    from crontabber.store.records import Snapshot
    from crontabber.web.metrics import JobsCollector

    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    collector = JobsCollector([], lambda: (Snapshot({}, now), {}), lambda: {})
    lines = ["## Metrics", "", "| metric | type | what it says |", "| --- | --- | --- |"]
    for family in collector.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        lines.append(f"| `{name}` | {family.type} | {cell(family.documentation)} |")
    return lines


def tables_section() -> list[str]:
    from crontabber.store.tables import metadata

    lines = ["## Tables", ""]
    for table in metadata.sorted_tables:
        lines += [f"### `{table.name}`", "", "| column | type | null |", "| --- | --- | --- |"]
        for column in table.columns:
            kind = type(column.type).__name__
            lines.append(f"| `{column.name}` | {kind} | {'yes' if column.nullable else 'no'} |")
        lines.append("")
    return lines


def reference() -> str:
    lines = [
        "# Reference",
        "",
        "Generated from crontabber's own tables by `docs/gen_reference.py`.",
        "",
        *options_section(),
        "",
        "## Exit statuses",
        "",
        EXIT_STATUSES.strip(),
        "",
        *metrics_section(),
        "",
        *tables_section(),
    ]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    (HERE / "reference.md").write_text(reference())
