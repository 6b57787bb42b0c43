"""Issue 13: the retrain action sends only refs and SHAs that git would read as names, never as options."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "github-actions" / "retrain" / "send_retrain.py"
SHA = "3f786850e387550fdab836ed7e6dc881de23001b"


def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("send_retrain", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["send_retrain"] = module
    spec.loader.exec_module(module)
    return module


def values(**changes: str) -> dict[str, str]:
    base = {"priority": "0", "ref": "refs/heads/main", "repo": "o/r", "sha": SHA, "pipeline": "", "reason": ""}
    return base | {"sender": "x", "run_id": "1", "run_attempt": "1"} | changes


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"ref": "--upload-pack=touch /tmp/x"}, "ref"),
        ({"ref": "refs/heads/a..b"}, "ref"),
        ({"ref": "refs/heads/-x"}, "ref"),
        ({"ref": "main@{1}"}, "ref"),
        ({"ref": "refs/heads/x.lock"}, "ref"),
        ({"ref": "feature/"}, "ref"),
        ({"sha": "--orphan=pwned"}, "sha"),
    ],
)
def test_a_ref_or_sha_git_would_misread_is_refused_naming_it(changes: dict[str, str], named: str) -> None:
    send_retrain = script()
    with pytest.raises(send_retrain.InputError, match=f"^{named} "):
        send_retrain.build_request(values(**changes), None)


@pytest.mark.parametrize(
    ("changes", "ref", "sha"),
    [
        ({}, "refs/heads/main", SHA),
        ({"ref": "release/1.2", "sha": ""}, "refs/heads/release/1.2", ""),
        ({"ref": "refs/tags/v1", "sha": "ab" * 32}, "refs/tags/v1", "ab" * 32),  # a SHA-256 repository
    ],
)
def test_branch_names_full_refs_and_both_sha_lengths_are_sent(changes: dict[str, str], ref: str, sha: str) -> None:
    request = script().build_request(values(**changes), None)
    assert (request.ref, request.sha) == (ref, sha)
