"""Commands as values: argv words that may hold deploy-time values, and their exact shell rendering.

Some values exist only at deploy time (the project number, a function's URL, a log sink's writer identity, a
secret's value). A plan never holds them: it holds a `Capture`, the command that prints the value. The dry run
renders a capture as a shell command substitution, `"$(gcloud ... describe ...)"`, so its output is a script a user
could paste; the runner resolves the same capture in Python by running the inner command first.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field

DIGEST_MODULE = "relaunch.deploy.digest"


@dataclass(frozen=True)
class Capture:
    """The standard output of a command, known only when the command runs (trailing newlines dropped)."""

    cmd: Cmd
    secret: bool = False  # a secret's value: resolved in memory, never printed or logged


@dataclass(frozen=True)
class SourceDigest:
    """A digest of a folder's files (the functions' deploy source), so a changed source redeploys."""

    path: str


Part = str | Capture | SourceDigest


@dataclass(frozen=True)
class Word:
    """One argv word made of literal text and deploy-time values, e.g. `serviceAccount:` + a capture."""

    parts: tuple[Part, ...]


Arg = str | Capture | SourceDigest | Word


@dataclass(frozen=True)
class Cmd:
    """One command: argv, extra environment variables, and an optional capture piped to its stdin."""

    argv: tuple[Arg, ...]
    env: tuple[tuple[str, Arg], ...] = ()
    stdin: Capture | None = field(default=None)


def cmd(*argv: Arg, env: Iterable[tuple[str, Arg]] = (), stdin: Capture | None = None) -> Cmd:
    """A Cmd from its words."""
    return Cmd(tuple(argv), tuple(env), stdin)


def word(*args: Arg) -> Arg:
    """Literal text and deploy-time values as one argv word (a plain str when every part is literal)."""
    merged: list[Part] = []
    for part in (p for a in args for p in (a.parts if isinstance(a, Word) else (a,))):
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        elif part != "":
            merged.append(part)
    if all(isinstance(p, str) for p in merged):
        return "".join(p for p in merged if isinstance(p, str))
    return Word(tuple(merged))


def render(command: Cmd) -> str:
    """The command as one line of POSIX shell: literals quoted with shlex, deploy-time values as `"$(...)"`."""
    line = " ".join(render_arg(a) for a in command.argv)
    if command.env:
        line = " ".join(f"{name}={render_arg(value)}" for name, value in command.env) + " " + line
    if command.stdin is not None:
        line = f"{render(command.stdin.cmd)} | {line}"
    return line


def render_arg(arg: Arg) -> str:
    """One word as shell text."""
    if isinstance(arg, str):
        return shlex.quote(arg)
    if isinstance(arg, Capture):
        return f'"$({render(arg.cmd)})"'
    if isinstance(arg, SourceDigest):
        return f'"$(python3 -m {DIGEST_MODULE} {shlex.quote(arg.path)})"'
    return "".join(shlex.quote(p) if isinstance(p, str) else render_arg(p) for p in arg.parts)


def captures(command: Cmd) -> list[Capture]:
    """Every capture a command needs resolved, outermost first (used to check plans, never to print values)."""
    found: list[Capture] = []
    words: list[Arg] = [*command.argv, *(value for _, value in command.env)]
    if command.stdin is not None:
        words.append(command.stdin)
    for arg in words:
        parts = arg.parts if isinstance(arg, Word) else (arg,)
        for part in parts:
            if isinstance(part, Capture):
                found.append(part)
                found.extend(captures(part.cmd))
    return found
