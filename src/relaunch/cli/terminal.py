"""Where the CLI's views go: a rich console on stdout, in colour only on a terminal without NO_COLOR.

On a terminal, tables fit its width (a long value folds onto the next line, never cut). Anywhere else (a pipe, a
file, a test), output is plain text: no escape sequence, no width limit, no trailing spaces, so it stays stable and
greppable.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from rich.console import Console, RenderableType

PLAIN_WIDTH = 100_000  # wide enough that no value a table holds is ever wrapped or cut in plain output


def colour_wanted(stream: TextIO) -> bool:
    """Colour only for a person at a terminal who did not ask for none (https://no-color.org)."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


def console(stream: TextIO | None = None) -> Console:
    """A console for `stream` (stdout): rich markup, emoji codes and highlighting off, as outside text is shown."""
    stream = stream or sys.stdout
    tty = stream.isatty()
    return Console(
        file=stream,
        force_terminal=tty,
        color_system="auto" if colour_wanted(stream) else None,
        width=None if tty else PLAIN_WIDTH,
        markup=False,
        emoji=False,
        highlight=False,
        soft_wrap=not tty,
    )


def show(*renderables: RenderableType, stream: TextIO | None = None) -> None:
    """Print renderables to `stream` (stdout): styled on a terminal, plain lines otherwise."""
    stream = stream or sys.stdout
    out = console(stream)
    if out.is_terminal:
        out.print(*renderables)
        return
    with out.capture() as captured:
        out.print(*renderables)
    stream.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
    stream.flush()
