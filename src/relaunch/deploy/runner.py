"""Apply a plan through a narrow `Shell` port: describe each resource, create or update only what is missing or
different, stop at the first failure naming the resource. A second run over a deployed project only describes.

Deploy-time values (`Capture`s) are resolved here, in Python, by running their inner command first: no step runs
through a shell. Secret values live in memory only; any text shown to the user has them replaced by `***`.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from relaunch.deploy.command import Arg, Capture, Cmd, SourceDigest, Word, render
from relaunch.deploy.digest import source_digest
from relaunch.deploy.plan import Plan
from relaunch.deploy.step import Step

_NOT_FOUND = re.compile(r"NOT_FOUND|not found|does not exist|HTTP 404|\b404\b", re.IGNORECASE)
TAIL = 1500  # characters of a failing command's stderr worth showing
Action = Literal["unchanged", "created", "updated"]


@dataclass(frozen=True)
class Result:
    """What a command did: exit code and its two outputs."""

    code: int
    stdout: str
    stderr: str


class Shell(Protocol):
    """Runs one argv (never through a shell), with extra environment variables and optional stdin text."""

    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, stdin: str | None = None) -> Result:
        """Run and wait."""
        ...


class SubprocessShell:
    """The real Shell: subprocess with an argv list, the caller's environment plus `env`."""

    def __init__(self, timeout_s: float = 3600.0) -> None:
        self.timeout_s = timeout_s  # a function deploy (a Cloud Build underneath) takes minutes

    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, stdin: str | None = None) -> Result:
        try:
            done = subprocess.run(
                list(argv),
                input=stdin if stdin is not None else "",
                capture_output=True,
                text=True,
                env={**os.environ, **(env or {})},
                timeout=self.timeout_s,
                check=False,
            )
        except FileNotFoundError:
            return Result(127, "", f"{argv[0]}: command not found (install it, or put it on PATH)")
        except subprocess.TimeoutExpired:
            return Result(124, "", f"{argv[0]}: still running after {self.timeout_s:.0f} s, stopped")
        return Result(done.returncode, done.stdout, done.stderr)


class DeployError(Exception):
    """The deploy stopped; the message names the resource and says why."""


@dataclass
class Report:
    """What each step did, in order."""

    actions: list[tuple[str, Action]] = field(default_factory=list)

    def count(self, action: Action) -> int:
        return sum(a == action for _, a in self.actions)


class _Resolver:
    """Turns plan words into strings, running each capture's command once; remembers secret values to hide."""

    def __init__(self, shell: Shell) -> None:
        self.shell = shell
        self.cache: dict[tuple[Capture, bool], str] = {}
        self.secrets: set[str] = set()

    def arg(self, arg: Arg) -> str:
        if isinstance(arg, str):
            return arg
        if isinstance(arg, Capture):
            return self.capture(arg, raw=False)
        if isinstance(arg, SourceDigest):
            return source_digest(Path(arg.path))
        assert isinstance(arg, Word)
        return "".join(self.arg(part) for part in arg.parts)

    def capture(self, capture: Capture, *, raw: bool) -> str:
        key = (capture, raw)
        if key not in self.cache:
            result = self.run(capture.cmd)
            if result.code != 0:
                raise DeployError(f"cannot resolve `{render(capture.cmd)}`: {self.hide(_tail(result))}")
            self.cache[key] = result.stdout if raw else result.stdout.rstrip("\n")  # as "$(...)" would
            if capture.secret and result.stdout.strip():
                self.secrets.update({result.stdout, result.stdout.strip()})
        return self.cache[key]

    def run(self, command: Cmd) -> Result:
        argv = [self.arg(a) for a in command.argv]
        env = {name: self.arg(value) for name, value in command.env}
        stdin = self.capture(command.stdin, raw=True) if command.stdin is not None else None
        return self.shell.run(argv, env=env, stdin=stdin)

    def hide(self, text: str) -> str:
        for value in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(value, "***")
        return text


def run_plan(plan: Plan, shell: Shell, echo: Callable[[str], None] = print) -> Report:
    """Apply every step in order; raise DeployError at the first one that cannot be brought to its declared state."""
    resolver = _Resolver(shell)
    report = Report()
    for step in plan.steps:
        try:
            action = _apply(step, resolver)
        except DeployError as exc:
            raise DeployError(f"{step.id}: {resolver.hide(str(exc))}") from None
        report.actions.append((step.id, action))
        echo(f"{_MARK[action]} {step.id}")
    return report


_MARK: dict[Action, str] = {"unchanged": "=", "created": "+", "updated": "~"}


def _apply(step: Step, resolver: _Resolver) -> Action:
    found = resolver.run(step.describe)
    if found.code == 127:
        raise DeployError(found.stderr.strip())
    if found.code != 0:
        if not _NOT_FOUND.search(found.stderr):
            raise DeployError(f"cannot check it (exit {found.code}): {_tail(found)}")
        if step.create is None:
            raise DeployError(step.missing or "missing, and deploy does not create it")
        _act(resolver, step.create, "create")
        return "created"
    if step.expect is None or _norm(found.stdout) == _norm(resolver.arg(step.expect)):
        return "unchanged"
    if step.update is None:
        declared = resolver.arg(step.expect)
        raise DeployError(step.missing or f"exists but differs: found {_norm(found.stdout)!r}, declared {declared!r}")
    absent = not found.stdout.strip()  # e.g. get-iam-policy lists nothing: the binding is not there yet
    _act(resolver, step.update, "create" if absent else "update")
    return "created" if absent else "updated"


def _act(resolver: _Resolver, command: Cmd, verb: str) -> None:
    result = resolver.run(command)
    if result.code != 0:
        raise DeployError(f"{verb} failed (exit {result.code}): {_tail(result)}")


def _norm(text: str) -> str:
    return " ".join(text.split())


def _tail(result: Result) -> str:
    text = (result.stderr or result.stdout).strip()
    return text[-TAIL:] if text else f"exit {result.code} and no output"
