"""Commit and ref names from outside, checked before they reach git, Cloud Build or a job. Pure.

A payload's `after`, `head.sha` or `ref` ends up on a git command line; `--orphan=pwned` as a "SHA" is an option
there. Every name is therefore checked here first: a SHA is 40 (SHA-1) or 64 (SHA-256) lower-case hex digits, and a
ref follows `git check-ref-format`'s rules, plus one of ours: no part may start with "-".
"""

from __future__ import annotations

import re

from relaunch.triggers.errors import Unprocessable

_SHA = re.compile(r"\A(?:[0-9a-f]{40}|[0-9a-f]{64})\Z")
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")  # controls, space, and what git reserves for revision syntax
MAX_REF_LENGTH = 255


def is_sha(value: object) -> bool:
    """Whether `value` is a full commit id (40 or 64 lower-case hex digits)."""
    return isinstance(value, str) and _SHA.match(value) is not None


def ref_problem(ref: object) -> str | None:
    """Why `ref` is not a safe, well-formed full ref name (refs/...), or None when it is."""
    if not isinstance(ref, str) or not ref:
        return "must be a non-empty string"
    if not ref.startswith("refs/"):
        return "must be a full ref name starting with refs/"
    return name_problem(ref)


def name_problem(name: object) -> str | None:
    """Why `name` (a ref, or a branch or tag name without refs/heads/) breaks git check-ref-format, or None."""
    if not isinstance(name, str) or not name:
        return "must be a non-empty string"
    if len(name) > MAX_REF_LENGTH:
        return f"is longer than {MAX_REF_LENGTH} characters"
    if not name.isascii() and not _is_text(name):
        return "is not valid Unicode text"
    if _FORBIDDEN.search(name):
        return "contains a control character, a space or one of ~ ^ : ? * [ \\"
    if name == "@" or "@{" in name or ".." in name or "//" in name:
        return "contains '..', '//' or '@{', or is '@'"
    if name.startswith("/") or name.endswith(("/", ".")):
        return "starts with '/' or ends with '/' or '.'"
    for part in name.split("/"):
        if part.startswith((".", "-")) or part.endswith(".lock"):
            return "has a part starting with '.' or '-', or ending with '.lock'"
    return None


def check_sha(value: object, field: str) -> str:
    """`value` if it is a full commit id, else a 422 naming `field`."""
    if not is_sha(value):
        raise Unprocessable(f"{field} must be a full commit SHA (40 or 64 lower-case hex digits)", field=field)
    assert isinstance(value, str)
    return value


def check_ref(value: object, field: str) -> str:
    """`value` if it is a well-formed full ref (refs/...), else a 422 naming `field` and the rule it breaks."""
    problem = ref_problem(value)
    if problem:
        raise Unprocessable(f"{field} {problem}", field=field)
    assert isinstance(value, str)
    return value


def check_name(value: object, field: str) -> str:
    """`value` if it is a well-formed branch or tag name (no refs/ needed), else a 422 naming `field`."""
    problem = name_problem(value)
    if problem:
        raise Unprocessable(f"{field} {problem}", field=field)
    assert isinstance(value, str)
    return value


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: valid JSON, not text
        return False
    return True
