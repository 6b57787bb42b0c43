"""Commit and ref names from outside, checked before they reach git, Cloud Build or a job. Pure.

A payload's `after`, `head.sha` or `ref` ends up on a git command line; `--orphan=pwned` as a "SHA" is an option
there. Every name is therefore checked here first: a SHA is 40 (SHA-1) or 64 (SHA-256) lower-case hex digits, and a
ref follows `git check-ref-format`'s rules, plus one of ours: no part may start with "-".
"""

from __future__ import annotations

import re

_SHA = re.compile(r"\A(?:[0-9a-f]{40}|[0-9a-f]{64})\Z")
# Controls (C0, DEL and C1: a C1 byte is a terminal escape too), space, and what git reserves for revision syntax.
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f-\x9f~^:?*\[\\]")
MAX_REF_LENGTH = 255
MAX_URL_LENGTH = 2048
# Clone URLs: hosts and users never start with '-' (ssh would read an option); paths take no query, fragment, space
# or quote. IPv6 literals are not supported.
_HOST = r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}"
_PORT = r"(?::[0-9]{1,5})?"
_USER = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}"
_PATH = r"[A-Za-z0-9._~%+=,/-]+"
_CLONE_URLS = (
    re.compile(rf"\Ahttps://{_HOST}{_PORT}/{_PATH}\Z"),
    re.compile(rf"\Assh://(?:{_USER}@)?{_HOST}{_PORT}/{_PATH}\Z"),
    re.compile(rf"\A{_USER}@{_HOST}:(?!-){_PATH}\Z"),  # scp-like: git@github.com:owner/name.git
    re.compile(rf"\Afile:///{_PATH}\Z"),
)
_CREDENTIALS = re.compile(r"\A(?:https://[^/]*@|ssh://[^/@]*:[^/]*@)")
_DOT_DOT = re.compile(r"(?:\A|[/:])\.\.(?:/|\Z)")
_REPO = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}\Z")


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


def run_ref_problem(ref: object) -> str | None:
    """Why a run's ref (a full ref, or a bare branch name as `github.ref_name` gives it) is unsafe, or None."""
    return ref_problem(ref) if isinstance(ref, str) and ref.startswith("refs/") else name_problem(ref)


def clone_url_problem(url: object) -> str | None:
    """Why `url` is not a clone URL to hand git (https, ssh, USER@HOST:PATH, file:///PATH), or None when it is."""
    if not isinstance(url, str) or not url:
        return "must be a non-empty string"
    if len(url) > MAX_URL_LENGTH:
        return f"is longer than {MAX_URL_LENGTH} characters"
    if _CREDENTIALS.match(url):
        return "must not carry credentials (user:password@ or token@): use a git credential helper or an ssh key"
    if not any(pattern.match(url) for pattern in _CLONE_URLS):
        return (
            "must be https://HOST/PATH, ssh://[USER@]HOST/PATH, USER@HOST:PATH or file:///ABSOLUTE/PATH "
            f"(no other scheme, no spaces, quotes, query or fragment), got {url[:80]!r}"
        )
    if _DOT_DOT.search(url.split("://", 1)[-1]):
        return "must not have a '..' path segment"
    return None


def is_local_url(url: str) -> bool:
    """Whether `url` clones from this machine's file system (allowed in the embedded profile only)."""
    return url.startswith("file:")


def repo_problem(full_name: object) -> str | None:
    """Why `full_name` is not a GitHub owner/name (the https clone URL is built from it), or None."""
    if not isinstance(full_name, str) or not _REPO.match(full_name) or full_name.rsplit("/", 1)[1] in (".", ".."):
        return "must be 'owner/name' with GitHub's characters (letters, digits, '-'; the name also '.' and '_')"
    return None


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: valid JSON, not text
        return False
    return True
