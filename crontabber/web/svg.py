"""Pictures drawn on the server as SVG: the dependency graph and a job's run history.

No Graphviz and no script: a layered layout (each job one column right of its
deepest dependency) and a scatter of durations. Every text is escaped; colours
are attributes, so the SVG reads the same inline, alone, and under a strict
Content-Security-Policy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

from crontabber.store.records import LogEntry
from crontabber.web.views import JobRow, Status

FILL = {
    Status.OK: "#d9f2d9",
    Status.FAILING: "#f8c9c4",
    Status.RUNNING: "#ffe79a",
    Status.HELD_BACK: "#d6def0",
    Status.NEVER_RUN: "#e6e6e6",
}
STROKE = {
    Status.OK: "#3c8d3c",
    Status.FAILING: "#b3261e",
    Status.RUNNING: "#a07800",
    Status.HELD_BACK: "#4a5f8f",
    Status.NEVER_RUN: "#777777",
}
NODE_W, NODE_H, GAP_X, GAP_Y, MARGIN = 200, 44, 56, 14, 10
NAME_CHARS = 26


def _short(text: str, limit: int = NAME_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def layers(rows: Sequence[JobRow]) -> list[list[JobRow]]:
    """The rows by depth (a job one column right of its deepest dependency), each
    column ordered by where its jobs' dependencies sit (one barycentre pass)."""
    depth: dict[str, int] = {}
    for row in rows:  # dependency order: every dependency is placed first
        known = [depth[name] for name in row.listing.spec.depends_on if name in depth]
        depth[row.app_name] = max(known, default=-1) + 1
    columns: list[list[JobRow]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    position: dict[str, float] = {}
    for row in rows:
        columns[depth[row.app_name]].append(row)

    def weight(row: JobRow) -> float:
        parents = [position[n] for n in row.listing.spec.depends_on if n in position]
        return sum(parents) / len(parents) if parents else -1.0

    for column in columns:
        column.sort(key=weight)
        for index, row in enumerate(column):
            position[row.app_name] = float(index)
    return columns


def graph_svg(rows: Sequence[JobRow], href: Callable[[str], str]) -> Markup:
    """The dependency graph, left to right, each job a box coloured by its state and
    linked to its page (``href(app_name)``)."""
    columns = layers(rows)
    place: dict[str, tuple[int, int]] = {}
    for x, column in enumerate(columns):
        for y, row in enumerate(column):
            place[row.app_name] = (
                MARGIN + x * (NODE_W + GAP_X),
                MARGIN + y * (NODE_H + GAP_Y),
            )
    width = MARGIN * 2 + max(len(columns), 1) * (NODE_W + GAP_X) - GAP_X
    height = MARGIN * 2 + max((len(c) for c in columns), default=1) * (NODE_H + GAP_Y) - GAP_Y
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-label="dependency graph of {len(rows)} jobs">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M 0 0 L 10 5 L 0 10 z" fill="#666"/></marker></defs>',
    ]
    for row in rows:
        x2, y2 = place[row.app_name]
        for name in row.listing.spec.depends_on:
            if name not in place:
                continue
            x1, y1 = place[name]
            sx, sy, ex, ey = x1 + NODE_W, y1 + NODE_H // 2, x2, y2 + NODE_H // 2
            mid = (sx + ex) / 2
            parts.append(
                f'<path class="edge" d="M {sx} {sy} C {mid} {sy}, {mid} {ey}, {ex} {ey}" '
                'fill="none" stroke="#666" stroke-width="1.2" marker-end="url(#arrow)"/>'
            )
    for row in rows:
        x, y = place[row.app_name]
        name = escape(row.app_name)
        parts.append(
            f'<a href="{escape(href(row.app_name))}" class="node" '
            f'data-status="{row.status.css}" data-app="{name}">'
            f"<title>{name}: {escape(row.status.value)}"
            f"{escape(', ' + row.detail) if row.detail else ''}</title>"
            f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6" '
            f'fill="{FILL[row.status]}" stroke="{STROKE[row.status]}" '
            f'stroke-width="{2.5 if row.status in (Status.FAILING, Status.RUNNING) else 1.2}"/>'
            f'<text x="{x + 8}" y="{y + 18}" font-size="13" font-family="sans-serif" '
            f'font-weight="600" fill="#111">{escape(_short(row.app_name))}</text>'
            f'<text x="{x + 8}" y="{y + 35}" font-size="11" font-family="sans-serif" '
            f'fill="#333">{escape(row.status.value)}{" (late)" if row.late else ""}</text>'
            "</a>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


CHART_W, CHART_H, PAD_L, PAD_R, PAD_T, PAD_B = 720, 220, 64, 16, 14, 40


def _seconds(value: dt.timedelta | None) -> float:
    return max(value.total_seconds(), 0.0) if value is not None else 0.0


def _duration_label(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"


def history_svg(entries: Sequence[LogEntry]) -> Markup:
    """Durations over time of the given runs, oldest left: a green dot for a success,
    a red square for a failure. Empty when there are no runs."""
    runs = sorted(entries, key=lambda entry: (entry.log_time, entry.id))
    if not runs:
        return Markup("")
    first, last = runs[0].log_time, runs[-1].log_time
    span = max((last - first).total_seconds(), 1.0)
    top = max(*(_seconds(run.duration) for run in runs), 1.0)
    inner_w, inner_h = CHART_W - PAD_L - PAD_R, CHART_H - PAD_T - PAD_B

    def x_of(run: LogEntry) -> float:
        if len(runs) == 1:
            return PAD_L + inner_w / 2
        return PAD_L + inner_w * (run.log_time - first).total_seconds() / span

    def y_of(run: LogEntry) -> float:
        return PAD_T + inner_h * (1 - _seconds(run.duration) / top)

    base = PAD_T + inner_h
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {CHART_W} {CHART_H}" preserveAspectRatio="xMinYMin meet" '
        f'aria-label="durations and outcomes of {len(runs)} runs">',
        f'<line x1="{PAD_L}" y1="{base}" x2="{CHART_W - PAD_R}" y2="{base}" stroke="#999"/>',
        f'<line x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{base}" stroke="#999"/>',
        f'<text x="{PAD_L - 6}" y="{PAD_T + 10}" text-anchor="end" font-size="11" '
        f'font-family="sans-serif" fill="#333">{escape(_duration_label(top))}</text>',
        f'<text x="{PAD_L - 6}" y="{base}" text-anchor="end" font-size="11" '
        f'font-family="sans-serif" fill="#333">0</text>',
        f'<text x="{PAD_L}" y="{CHART_H - 12}" font-size="11" font-family="sans-serif" '
        f'fill="#333">{first:%Y-%m-%d %H:%M} UTC</text>',
        f'<text x="{CHART_W - PAD_R}" y="{CHART_H - 12}" text-anchor="end" font-size="11" '
        f'font-family="sans-serif" fill="#333">{last:%Y-%m-%d %H:%M} UTC</text>',
    ]
    if len(runs) > 1:
        points = " ".join(f"{x_of(run):.1f},{y_of(run):.1f}" for run in runs)
        parts.append(f'<polyline points="{points}" fill="none" stroke="#bbb" stroke-width="1"/>')
    for run in runs:
        x, y = x_of(run), y_of(run)
        outcome = "failed" if run.failed else "succeeded"
        title = escape(
            f"{run.log_time:%Y-%m-%d %H:%M:%S} UTC: {outcome} in "
            f"{_duration_label(_seconds(run.duration))}"
            + (f" ({run.exc_type})" if run.failed else "")
        )
        if run.failed:
            parts.append(
                f'<rect class="point failed" x="{x - 4.5:.1f}" y="{y - 4.5:.1f}" width="9" '
                f'height="9" fill="#c62828"><title>{title}</title></rect>'
            )
        else:
            parts.append(
                f'<circle class="point succeeded" cx="{x:.1f}" cy="{y:.1f}" r="4.5" '
                f'fill="#2e7d32"><title>{title}</title></circle>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))
