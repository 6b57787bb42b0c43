"""Outside text made safe for a terminal: characters that steer it or hide what it shows become visible escapes.

A commit message, a ref, an author name or a reason comes from whoever sent the event. Printed raw, ESC and the
other C0/C1 controls can retitle the window, clear the screen, rewrite earlier lines or (on some terminals) answer
back; a bidi override makes a line read differently from its bytes; a lone surrogate makes `print` itself fail.
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls, bidi marks/embeddings/overrides/isolates, line/paragraph separators, surrogates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")
_UNSAFE_IN_BLOCK = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def safe_line(value: object) -> str:
    """`value` as one line of text with every control, bidi and unpaired character escaped (newlines too)."""
    return _UNSAFE.sub(_escape, str(value))


def safe_block(value: object) -> str:
    """Like `safe_line` but keeps newlines and tabs: for text of several lines, such as a rendered table."""
    return _UNSAFE_IN_BLOCK.sub(_escape, str(value))
