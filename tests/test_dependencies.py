"""Every distribution relaunch imports is declared in pyproject.toml (or comes with one that is, said below)."""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "relaunch"
# Imported directly but guaranteed by a declared distribution, which must itself be declared.
COMES_WITH = {
    "cloudevents": "functions-framework",
    "flask": "functions-framework",
    "werkzeug": "functions-framework",
    "google-api-core": "google-cloud-pubsub",
    "google-auth": "google-cloud-pubsub",
    "protobuf": "google-cloud-pubsub",
    "numpy": "scikit-learn",
    "pydantic-core": "pydantic",
    "urllib3": "requests",
}


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"].values()
    requirements = [*project["dependencies"], *(r for extra in extras for r in extra)]
    return {norm(re.split(r"[\s<>=!~\[;]", r, maxsplit=1)[0]) for r in requirements if not r.startswith("relaunch")}


def imported_modules() -> set[str]:
    found: set[str] = set()
    for path in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {m for m in found if m.split(".")[0] not in sys.stdlib_module_names and m.split(".")[0] != "relaunch"}


def owners() -> dict[str, str]:
    """Installed module path (`google/cloud/storage/__init__.py`, as each distribution's RECORD lists it) -> owner."""
    found: dict[str, str] = {}
    for dist in md.distributions():
        name = norm(dist.metadata["Name"])  # parsed once per distribution, not per file
        found.update((str(f), name) for f in dist.files or [])
    return found


def distribution_of(module: str, files: dict[str, str]) -> str | None:
    """The distribution that installed `module` (or its nearest package), read from RECORDs: nothing is imported."""
    parts = module.split(".")
    while parts:
        base = "/".join(parts)
        for candidate in (f"{base}/__init__.py", f"{base}.py"):
            if candidate in files:
                return files[candidate]
        parts.pop()  # `from package import name`: the name is no module; a namespace package (google) has no file
    return None


def test_every_imported_distribution_is_declared() -> None:
    files, ours = owners(), declared()
    used = {dist for module in imported_modules() if (dist := distribution_of(module, files))}
    assert used, "no third-party import found: the scan is broken"
    undeclared = sorted(d for d in used if d not in ours and COMES_WITH.get(d) not in ours)
    assert undeclared == []
