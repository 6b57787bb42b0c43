"""Argument types that turn a user's typo into argparse's one-line usage error (exit 2), never a traceback later.

Each checks what the receiving trigger would refuse, by the same rule, so `relaunch simulate` fails at the prompt
instead of sending an event the stack answers with a 422 or dead-letters.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import NoReturn

from relaunch.domain.gitnames import name_problem, repo_problem, run_ref_problem

# Cloud Build's Build.Status names (google.devtools.cloudbuild.v1.Build.Status).
BUILD_STATUSES = (
    "SUCCESS",
    "FAILURE",
    "INTERNAL_ERROR",
    "TIMEOUT",
    "CANCELLED",
    "EXPIRED",
    "QUEUED",
    "PENDING",
    "WORKING",
    "STATUS_UNKNOWN",
)
_INVALID_CHOICE = re.compile(r"invalid choice: '([^']*)' \(choose from (.*)\)$")


class SuggestingParser(argparse.ArgumentParser):
    """argparse's parser whose "invalid choice" error adds the closest valid one (build: did you mean cloudbuild)."""

    def error(self, message: str) -> NoReturn:
        found = _INVALID_CHOICE.search(message)
        if found:
            import difflib  # a typo's suggestion: not worth importing at every start

            choices = re.findall(r"'([^']*)'", found.group(2))
            close = difflib.get_close_matches(found.group(1), choices, n=1)
            if close:
                message += f"; did you mean {close[0]!r}?"
        super().error(message)


def full_name(value: str) -> str:
    """A GitHub owner/name."""
    if problem := repo_problem(value):
        raise argparse.ArgumentTypeError(f"{value[:80]!r} {problem}")
    return value


def positive(value: str) -> int:
    """A whole number from 1 (a pull request number)."""
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value[:40]!r} is not a positive whole number")
    return int(value)


def priority(value: str) -> int:
    """A training priority, 0 to 100 as a pipeline spec's."""
    if not value.isdigit() or int(value) > 100:
        raise argparse.ArgumentTypeError(f"{value[:40]!r} is not a whole number from 0 to 100")
    return int(value)


def name_value(value: str) -> tuple[str, str]:
    """One NAME=VALUE input of a workflow_dispatch."""
    name, equals, text = value.partition("=")
    if not equals or not name.strip():
        raise argparse.ArgumentTypeError(f"{value[:80]!r} is not NAME=VALUE (e.g. pipeline=digits)")
    return name.strip(), text


def artifact(value: str) -> str:
    """A W&B artifact path: entity/project/name, optionally :version or :alias."""
    parts = value.split(":", 1)[0].split("/")
    if len(parts) != 3 or not all(part.strip() for part in parts):
        raise argparse.ArgumentTypeError(f"{value[:80]!r} is not entity/project/name[:vN]")
    return value


def folder(value: str) -> Path:
    """An existing folder."""
    path = Path(value)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{value[:200]} is not a folder")
    return path


def pipeline(value: str) -> str:
    """A pipeline name by the spec's rule (whether one of that name exists is checked against the specs later)."""
    from relaunch.triggers.scheduler import PIPELINE_NAME

    if not PIPELINE_NAME.match(value):
        raise argparse.ArgumentTypeError(f"{value[:80]!r} is not a pipeline name (^[a-z][a-z0-9-]{{0,62}}$)")
    return value


def branch(value: str) -> str:
    """A branch name git would accept."""
    if problem := name_problem(value):
        raise argparse.ArgumentTypeError(f"{value[:80]!r} {problem}")
    return value


def ref(value: str) -> str:
    """A branch name or a full ref (refs/heads/x, refs/tags/v1)."""
    if problem := run_ref_problem(value):
        raise argparse.ArgumentTypeError(f"{value[:80]!r} {problem}")
    return value


def build_status(value: str) -> str:
    """A Cloud Build status name."""
    if value not in BUILD_STATUSES:
        raise argparse.ArgumentTypeError(
            f"{value[:40]!r} is not a Cloud Build status (one of {', '.join(BUILD_STATUSES)})"
        )
    return value
