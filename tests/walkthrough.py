"""The README's walkthrough as data: its console blocks, each command with the output the README shows for it.

A walkthrough section is the README text between `<!-- walkthrough -->` and `<!-- /walkthrough -->`. Inside it,
every ```console block is a sequence of `$ command` lines, each followed by the output the README promises. The
output is compared with doctest's checker and its ELLIPSIS option: `...` stands for any text (ids, times, paths).
An HTML comment just before a block says how to run it:

- `<!-- walkthrough: background -->`: the block's one command keeps running (the stack in its own terminal); its
  shown output must appear within the timeout;
- `<!-- walkthrough: until N -->`: each command is repeated until its output matches, for at most N seconds, as a
  reader who waits for a run and looks again would.
"""

from __future__ import annotations

import doctest
import re
from dataclasses import dataclass, field

_SECTION = re.compile(r"<!-- walkthrough -->(.*?)<!-- /walkthrough -->", re.S)
_BLOCK = re.compile(
    r"(?:<!-- walkthrough: (?P<mode>[a-z]+)(?: (?P<arg>\d+))? -->\s*)?```console\n(?P<body>.*?)```", re.S
)
_CHECKER = doctest.OutputChecker()
_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@dataclass
class Step:
    """One `$ command` and the output the README shows after it ('' when it shows none)."""

    command: str
    expected: str
    background: bool = False
    until_s: float = 0.0

    def matches(self, output: str) -> bool:
        """The output is what the README shows (ELLIPSIS and whitespace-normalised, as in a doctest)."""
        want = self.expected if self.expected.endswith("\n") or not self.expected else self.expected + "\n"
        got = output if output.endswith("\n") or not output else output + "\n"
        if not want:
            return True
        return _CHECKER.check_output(want, got, _FLAGS)


@dataclass
class Walkthrough:
    steps: list[Step] = field(default_factory=list)


def parse(readme: str) -> Walkthrough:
    """Every step of the README's walkthrough section, in order; ValueError when the section or a block is malformed."""
    section = _SECTION.search(readme)
    if section is None:
        raise ValueError("the README has no <!-- walkthrough --> section")
    walk = Walkthrough()
    for block in _BLOCK.finditer(section.group(1)):
        mode, arg = block.group("mode"), block.group("arg")
        if mode not in (None, "background", "until"):
            raise ValueError(f"unknown walkthrough mode {mode!r}")
        steps = _steps(block.group("body"))
        if mode == "background" and len(steps) != 1:
            raise ValueError("a background block holds exactly one command")
        for step in steps:
            step.background = mode == "background"
            step.until_s = float(arg) if mode == "until" and arg else 0.0
        walk.steps.extend(steps)
    if not walk.steps:
        raise ValueError("the walkthrough section has no console block")
    return walk


def _steps(body: str) -> list[Step]:
    steps: list[Step] = []
    for line in body.splitlines():
        if line.startswith("$ "):
            steps.append(Step(command=line[2:].strip(), expected=""))
        elif not steps:
            raise ValueError(f"output before any command: {line!r}")
        else:
            steps[-1].expected += line + "\n"
    return steps
