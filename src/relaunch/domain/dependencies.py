"""What a training repository declares it needs: the requirement lines of its requirements.txt or pyproject.toml.

Both files come from whatever commit was pushed, and the local builder installs what they say in the stack's own
process, so only plain requirements pass: `name[extras] specifiers ; marker`, with `--hash` pins. An option, an
include (`-r`, `-c`), an editable, an index URL or a direct reference (`name @ url`, a path) could make the installer
read the stack's files or fetch from anywhere; each is refused, naming the line. The environment's hash covers the
requirements (not comments or blank lines) and the interpreter, so an unchanged declaration reuses its environment.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass

REQUIREMENTS_TXT = "requirements.txt"
PYPROJECT_TOML = "pyproject.toml"
MAX_FILE_BYTES = 256 * 1024
MAX_REQUIREMENTS = 500
MAX_LINE = 1000
_LAYOUT = 1  # bumped when the way an environment is built changes, so older ones are not reused

_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_VERSION_CLAUSE = r"(?:===|~=|==|!=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+"
_SPECIFIERS = rf"{_VERSION_CLAUSE}(?:\s*,\s*{_VERSION_CLAUSE})*"
_MARKER = r"[A-Za-z0-9_.'\"<>=!~ ()+,*-]+"
REQUIREMENT = re.compile(
    rf"(?P<name>{_NAME})\s*(?:\[\s*{_NAME}(?:\s*,\s*{_NAME})*\s*\])?\s*"
    rf"(?:{_SPECIFIERS}|\(\s*{_SPECIFIERS}\s*\))?\s*(?:;\s*{_MARKER})?"
)
_HASH = re.compile(r"--hash[= ](?:sha256|sha384|sha512):[0-9a-f]{64,128}")
_COMMENT = re.compile(r"(^|\s)#.*$")


class DependencyFileError(ValueError):
    """A dependency file that cannot be read, or that says something the local builder refuses to install."""


@dataclass(frozen=True)
class Declared:
    """The requirement lines a repository declares, and the file they came from."""

    source: str
    requirements: tuple[str, ...]


def declared(requirements_txt: bytes | None, pyproject_toml: bytes | None) -> Declared | None:
    """What the repository declares: its requirements.txt if it has one, else its pyproject's [project] dependencies.

    None when it declares nothing (no requirements.txt, no [project] table): its jobs then run with relaunch's own
    interpreter. DependencyFileError names the file and line of anything refused.
    """
    if requirements_txt is not None:
        return Declared(REQUIREMENTS_TXT, parse_requirements_txt(_text(REQUIREMENTS_TXT, requirements_txt)))
    if pyproject_toml is not None:
        return parse_pyproject(_text(PYPROJECT_TOML, pyproject_toml))
    return None


def parse_requirements_txt(text: str) -> tuple[str, ...]:
    """The requirements of a requirements.txt, one normalised line each, comments and blank lines dropped."""
    found: list[str] = []
    for number, line in _logical_lines(text):
        stripped = _COMMENT.sub("", line).strip()
        if not stripped:
            continue
        requirement, _, rest = stripped.partition(" --")
        found.append(_requirement(REQUIREMENTS_TXT, number, requirement.strip(), hashes=f"--{rest}" if rest else ""))
    return _bounded(REQUIREMENTS_TXT, found)


def parse_pyproject(text: str) -> Declared | None:
    """The [project] dependencies of a pyproject.toml; None when it has no [project] table (tool settings only)."""
    try:
        project = tomllib.loads(text).get("project")
    except tomllib.TOMLDecodeError as exc:
        raise DependencyFileError(f"{PYPROJECT_TOML}: not valid TOML: {exc}") from None
    if project is None:
        return None
    if not isinstance(project, dict):
        raise DependencyFileError(f"{PYPROJECT_TOML}: [project] must be a table")
    if "dependencies" in (project.get("dynamic") or []):
        raise DependencyFileError(
            f"{PYPROJECT_TOML}: its dependencies are dynamic (computed by a build): list them in {REQUIREMENTS_TXT}"
        )
    listed = project.get("dependencies", [])
    if not isinstance(listed, list) or not all(isinstance(item, str) for item in listed):
        raise DependencyFileError(f"{PYPROJECT_TOML}: [project] dependencies must be a list of strings")
    found = [_requirement(PYPROJECT_TOML, n, item.strip(), hashes="") for n, item in enumerate(listed, 1)]
    return Declared(PYPROJECT_TOML, _bounded(PYPROJECT_TOML, found))


def environment_hash(wanted: Declared, python: str) -> str:
    """The environment's name: a hash of the requirements, in order, and of the interpreter they are installed for."""
    body = json.dumps({"layout": _LAYOUT, "python": python, "requirements": list(wanted.requirements)})
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def is_environment_hash(value: str) -> bool:
    """Whether `value` has the shape of an environment's hash (a folder name that cannot climb out of its root)."""
    return re.fullmatch(r"[0-9a-f]{16}", value) is not None


def _text(source: str, raw: bytes) -> str:
    if len(raw) > MAX_FILE_BYTES:
        raise DependencyFileError(f"{source}: {len(raw)} bytes, more than the {MAX_FILE_BYTES} the builder reads")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DependencyFileError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Lines joined at a trailing backslash, each with the number of its first physical line."""
    joined: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, line in enumerate(text.splitlines(), 1):
        start, head = pending if pending is not None else (number, "")
        if line.endswith("\\"):
            pending = (start, head + line[:-1])
            continue
        joined.append((start, head + line))
        pending = None
    if pending is not None:
        joined.append(pending)
    return joined


def _requirement(source: str, number: int, text: str, *, hashes: str) -> str:
    where = f"{source} line {number}" if source == REQUIREMENTS_TXT else f"{source} dependency {number}"
    shown = text[:80] + hashes[:40]
    if len(text) + len(hashes) > MAX_LINE:
        raise DependencyFileError(f"{where}: longer than {MAX_LINE} characters")
    if text.startswith("-") or not REQUIREMENT.fullmatch(text):
        raise DependencyFileError(
            f"{where}: {shown!r} is not a plain requirement (`name[extras] specifiers ; marker`): options, includes,"
            " editables, index URLs and direct references are not installed by the local builder"
        )
    pins = hashes.split()
    if hashes and not all(_HASH.fullmatch(f"{a} {b}" if b else a) for a, b in _pairs(pins)):
        raise DependencyFileError(f"{where}: {shown!r}: only `--hash=<algorithm>:<hex>` may follow a requirement")
    return " ".join([text, *pins])


def _pairs(tokens: list[str]) -> list[tuple[str, str]]:
    """`--hash=x` tokens alone, `--hash x` as a pair."""
    pairs, i = [], 0
    while i < len(tokens):
        if tokens[i] == "--hash" and i + 1 < len(tokens):
            pairs.append((tokens[i], tokens[i + 1]))
            i += 2
        else:
            pairs.append((tokens[i], ""))
            i += 1
    return pairs


def _bounded(source: str, found: list[str]) -> tuple[str, ...]:
    if len(found) > MAX_REQUIREMENTS:
        raise DependencyFileError(f"{source}: {len(found)} requirements, more than {MAX_REQUIREMENTS}")
    return tuple(found)
