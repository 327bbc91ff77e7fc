"""Plain-text tables for the CLI layers: rich tables rendered without colour or trailing padding,
so they line up in a terminal, a log file and a test alike."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any


class Out:
    """Renders rich tables to plain text lines (no trailing padding) on stdout."""

    def __init__(self, file: Any = None) -> None:
        from rich.console import Console

        self.file = file
        stream = file or sys.stdout
        self._console = Console(highlight=False, soft_wrap=False, color_system=None,
                                width=None if getattr(stream, "isatty", lambda: False)()
                                else 240)

    def print(self, thing: Any) -> None:
        with self._console.capture() as cap:
            self._console.print(thing)
        text = "\n".join(line.rstrip() for line in cap.get().splitlines())
        print(text.strip("\n") if isinstance(thing, str) else text.rstrip("\n") + "\n",
              file=self.file or sys.stdout)


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]],
          right: Sequence[str] = (), header: bool = True) -> Any:
    """A rich table with a dashed rule under its header; ``right``: right-aligned columns."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    ascii_head = box.Box("    \n    \n -- \n    \n    \n    \n    \n    \n", ascii=True)
    t = Table(title=None if title is None else Text(title), title_justify="left", box=ascii_head,
              pad_edge=False, show_header=header)
    for col in columns:
        t.add_column(Text(col), justify="right" if col in right else "left", no_wrap=True)
    for row in rows:  # as Text: a value like "[clinic]" is shown, never read as rich markup
        t.add_row(*(Text("" if x is None else str(x)) for x in row))
    return t
