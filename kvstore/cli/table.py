"""Tables for `-w table`.

On a pipe: exactly etcdctl's layout (tablewriter: centred headers, cells
aligned right, +---+ borders), so scripts that parse it keep working.
On a TTY: a lighter box-drawing table, left-aligned, with a bold header.
"""

from __future__ import annotations

from collections.abc import Sequence

import click


def render_plain(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in header]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def centred(text: str, width: int) -> str:
        gap = width - len(text)
        return " " * (gap // 2) + text + " " * (gap - gap // 2)

    lines = [
        rule,
        "| " + " | ".join(centred(h, w) for h, w in zip(header, widths, strict=True)) + " |",
        rule,
    ]
    for row in rows:
        lines.append("| " + " | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) + " |")
    lines.append(rule)
    return "\n".join(lines) + "\n"


def render_tty(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in header]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def rule(left: str, mid: str, right: str) -> str:
        return left + mid.join("─" * (w + 2) for w in widths) + right

    head = (
        "│"
        + "│".join(
            " " + click.style(h.ljust(w), bold=True, fg="cyan") + " "
            for h, w in zip(header, widths, strict=True)
        )
        + "│"
    )
    lines = [rule("┌", "┬", "┐"), head, rule("├", "┼", "┤")]
    for row in rows:
        lines.append(
            "│" + "│".join(f" {c.ljust(w)} " for c, w in zip(row, widths, strict=True)) + "│"
        )
    lines.append(rule("└", "┴", "┘"))
    return "\n".join(lines) + "\n"


def render(header: Sequence[str], rows: Sequence[Sequence[str]], tty: bool) -> str:
    return render_tty(header, rows) if tty else render_plain(header, rows)
