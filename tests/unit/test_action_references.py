"""The GitHub Actions files name what exists: relaunch's own action and workflow paths, and the deployed function.

A training repository copies these examples as they are: a `uses:` path that is not in this repository, two refs
that differ, or a URL naming the function's entry point instead of the function `relaunch deploy` creates would
each fail only once a user's workflow runs.
"""

from __future__ import annotations

import re
from pathlib import Path

from relaunch.config_files import load_specs
from relaunch.deploy import load_infra

ROOT = Path(__file__).resolve().parents[2]
FILES = [
    ROOT / "github-actions" / "retrain" / "action.yml",
    ROOT / "github-actions" / "examples" / "training-repo-retrain.yml",
    ROOT / "github-actions" / "README.md",
    ROOT / ".github" / "workflows" / "relaunch-train.yml",
]
OWN = re.compile(
    r"\b(?P<owner>[A-Za-z0-9_.-]+)/relaunch/(?P<path>[A-Za-z0-9_-][A-Za-z0-9_./-]*)@(?P<ref>[A-Za-z0-9_.-]+)"
)
FUNCTION_URL = re.compile(r"https://[A-Z0-9.-]+\.cloudfunctions\.net/(?P<function>[A-Za-z0-9_-]+)")


def test_every_reference_to_relaunch_itself_names_a_path_of_this_repository_at_one_ref() -> None:
    found = [(f.name, m) for f in FILES for m in OWN.finditer(f.read_text())]
    assert found, "the examples reference relaunch's action and workflow"
    for name, match in found:
        assert (ROOT / match["path"]).exists(), f"{name}: {match[0]} names a path this repository does not have"
    assert {m["ref"] for _, m in found} == {"main"}
    assert {m["owner"] for _, m in found} == {"OWNER"}, "one placeholder, explained in github-actions/README.md"


def test_an_example_webhook_url_names_the_function_deploy_creates() -> None:
    infra = load_infra(ROOT / "triggers" / "relaunch.yaml", load_specs(ROOT / "pipelines"))
    webhook = {f.name for f in infra.functions if f.entry_point == "github_webhook"}
    urls = [(f.name, m["function"]) for f in FILES for m in FUNCTION_URL.finditer(f.read_text())]
    for name, function in urls:
        assert function in webhook, f"{name}: {function!r} is no deployed function (deploy creates {sorted(webhook)})"
