"""The triggers file the gcp-emulated demo deploys: the shipped example (triggers/relaunch.yaml), in its own project.

The example names its project `my-ml-project` everywhere (bucket, image repository, service accounts), as a user's
copy names theirs; the demo gives it a fresh project id instead, exactly as a user edits the file, and loads it with
the same loader and checks as `relaunch deploy`. Its secrets get values here (Secret Manager's part): random
webhook credentials, a token the GitHub stand-in accepts, the Slack stand-in's URL.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from relaunch.config_files import load_specs
from relaunch.deploy import load_infra
from relaunch.deploy.infra import Infra

EXAMPLE_PROJECT = "my-ml-project"


def demo_infra(example: Path, project: str, pipelines: Path, work: Path) -> Infra:
    """The example triggers file with `project` for the example's, loaded and checked against `pipelines`."""
    text = example.read_text(encoding="utf-8").replace(EXAMPLE_PROJECT, project)
    copy = work / "relaunch.yaml"
    copy.write_text(text, encoding="utf-8")
    return load_infra(copy, load_specs(pipelines))


def secret_values(infra: Infra, *, github_token: str, slack_url: str) -> dict[str, str]:
    """A value for every secret the functions name: what `gcloud secrets create` would hold."""
    known = {"relaunch-github-token": github_token, "relaunch-slack-webhook-url": slack_url}
    names = {name for f in infra.functions for name in f.secrets.values()}
    return {name: known.get(name) or secrets.token_hex(24) for name in sorted(names)}
