"""Terminal output of certrenew: tables, colour where the terminal has it, and a progress line on stderr."""

from __future__ import annotations

import os
import sys
from typing import Sequence, TextIO

# ANSI SGR codes.
COLOURS = {"red": "31", "yellow": "33", "green": "32", "dim": "2", "bold": "1"}


class Style:
    """Colours text for a terminal, or leaves it plain.

    `auto` colours only a TTY and honours NO_COLOR (https://no-color.org: any non-empty value turns colour off).
    """

    def __init__(self, stream: TextIO, mode: str = "auto") -> None:
        if mode == "always":
            self.enabled = True
        elif mode == "never":
            self.enabled = False
        else:
            self.enabled = stream.isatty() and not os.environ.get("NO_COLOR")

    def __call__(self, text: str, colour: str | None) -> str:
        if not self.enabled or not colour:
            return text
        return f"\x1b[{COLOURS[colour]}m{text}\x1b[0m"


def render_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], style: Style, colours: Sequence[Sequence[str | None]] = ()
) -> str:
    """Return a left-aligned table; colours[row][column] names the colour of a cell, or None."""
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row)]
    lines = ["  ".join(style(header.ljust(width), "bold") for header, width in zip(headers, widths)).rstrip()]
    for index, row in enumerate(rows):
        row_colours = colours[index] if index < len(colours) else [None] * len(row)
        cells = [style(cell.ljust(width), colour) for cell, width, colour in zip(row, widths, row_colours)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


class Progress:
    """A one-line progress indicator on stderr, shown only when stderr is a terminal."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self._shown = False

    def update(self, label: str, done: int, total: int) -> None:
        """Show `label: done/total certificates`, or `label: done certificates` while the total is unknown."""
        if not self.enabled:
            return
        count = f"{done}/{total}" if total else f"{done}"
        self.stream.write(f"\r\x1b[2K{label}: {count} certificates")
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        """Erase the progress line so the output that follows starts clean."""
        if self._shown:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._shown = False
