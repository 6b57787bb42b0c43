""".ci/floors.txt pins every lower bound pyproject declares for what relaunch runs on, at exactly that bound.

.ci/run installs the package with these pins as constraints and runs the adapter tests against them, so a floor in
pyproject is a version that was tested; this check keeps the two files from drifting apart.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_EXTRAS = ("gcp", "wandb", "github")  # the test extra's tools are not what relaunch runs on


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_floors() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *(r for e in RUNTIME_EXTRAS for r in project["optional-dependencies"][e])]
    floors = {}
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9][0-9.]*)", requirement.replace(" ", ""))
        assert match, f"pyproject: {requirement!r} is not `name>=floor` (each runtime dependency states its floor)"
        floors[canonical(match[1])] = match[2]
    return floors


def pinned_floors() -> dict[str, str]:
    pins = {}
    for line in (ROOT / ".ci" / "floors.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.split("#")[0].strip().partition("==")
            pins[canonical(name)] = version
    return pins


def test_the_floors_file_pins_exactly_the_declared_floors() -> None:
    assert pinned_floors() == declared_floors()
