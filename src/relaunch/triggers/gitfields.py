"""Git names as trigger fields: the domain's checks (domain/gitnames.py), failing as a 422 that names the field."""

from __future__ import annotations

import re

from relaunch.domain.gitnames import is_sha, name_problem, ref_problem
from relaunch.triggers.errors import Unprocessable

# GitHub's own rules: an owner is 1-39 of [A-Za-z0-9-], a repository 1-100 of [A-Za-z0-9._-] (not "." or ".."); Apps
# log in as "name[bot]".
FULL_NAME = re.compile(r"\A[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/(?!\.\.?\Z)[A-Za-z0-9._-]{1,100}\Z")
LOGIN = re.compile(r"\A[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?\Z")


def check_sha(value: object, field: str) -> str:
    """`value` if it is a full commit id, else a 422 naming `field`."""
    if not is_sha(value):
        raise Unprocessable(f"{field} must be a full commit SHA (40 or 64 lower-case hex digits)", field=field)
    assert isinstance(value, str)
    return value


def check_ref(value: object, field: str) -> str:
    """`value` if it is a well-formed full ref (refs/...), else a 422 naming `field` and the rule it breaks."""
    return _checked(value, ref_problem(value), field)


def check_name(value: object, field: str) -> str:
    """`value` if it is a well-formed branch or tag name (no refs/ needed), else a 422 naming `field`."""
    return _checked(value, name_problem(value), field)


def _checked(value: object, problem: str | None, field: str) -> str:
    if problem:
        raise Unprocessable(f"{field} {problem}", field=field)
    assert isinstance(value, str)
    return value
