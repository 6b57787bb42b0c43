"""Outside text printed on a terminal: every steering or hiding character becomes a visible escape."""

from __future__ import annotations

import pytest

from relaunch.textsafe import safe_block, safe_line

UNSAFE = [chr(c) for c in [*range(0x20), *range(0x7F, 0xA0), 0x061C, 0x200E, 0x200F, *range(0x2028, 0x202F)]]
UNSAFE += [chr(c) for c in [*range(0x2066, 0x206A), 0xD800, 0xDBFF, 0xDC00, 0xDFFF]]


@pytest.mark.parametrize("char", UNSAFE)
def test_each_unsafe_character_becomes_a_visible_escape(char: str) -> None:
    shown = safe_line(f"a{char}b")
    assert shown.startswith("a\\") and shown.endswith("b") and shown.isascii() and shown.isprintable()
    expected = f"\\x{ord(char):02x}" if ord(char) <= 0xFF else f"\\u{ord(char):04x}"
    assert shown == f"a{expected}b"


def test_the_usual_payloads_are_defused() -> None:
    assert safe_line("\x1b]0;pwn\x07\x1b[2J\r\u202egnp.exe") == "\\x1b]0;pwn\\x07\\x1b[2J\\x0d\\u202egnp.exe"
    assert safe_line("fix: é, 日本, emoji 🎉 and a\ttab") == "fix: é, 日本, emoji 🎉 and a\\x09tab"
    assert safe_line("two\nlines") == "two\\x0alines"
    assert safe_line(None) == "None" and safe_line(42) == "42"
    safe_line("\udcff").encode("utf-8")  # a lone surrogate no longer makes print() raise


def test_a_block_keeps_its_lines_and_tabs_only() -> None:
    assert safe_block("a\tb\nc\x1b[2J\r\n\u202e") == "a\tb\nc\\x1b[2J\\x0d\n\\u202e"
