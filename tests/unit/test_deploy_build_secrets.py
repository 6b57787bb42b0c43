"""A service account's own secrets (`secrets:` in the triggers file): the build account reads the GitHub App's key to
clone private repositories, so deploy checks that secret exists and grants the account secretAccessor on it alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from relaunch.config_files import load_specs
from relaunch.deploy import load_infra
from relaunch.deploy.command import render
from relaunch.deploy.infra import ServiceAccount
from relaunch.deploy.plan import build_plan

ROOT = Path(__file__).resolve().parents[2]
SPECS = load_specs(ROOT / "pipelines")
BUILDER = "serviceAccount:relaunch-builder@my-ml-project.iam.gserviceaccount.com"


def plan_with_builder_secret() -> list[str]:
    infra = load_infra(ROOT / "triggers" / "relaunch.yaml", SPECS)
    accounts = [
        sa.model_copy(update={"secrets": ["relaunch-github-app-key"]}) if sa.name == "relaunch-builder" else sa
        for sa in infra.service_accounts
    ]
    plan = build_plan(infra.model_copy(update={"service_accounts": accounts}), SPECS)
    return [f"{s.id} | {render(s.describe)} | {render(s.create) if s.create else ''}" for s in plan.steps]


def test_deploy_checks_the_build_accounts_secret_and_grants_it_that_one_secret_only() -> None:
    steps = plan_with_builder_secret()
    assert [s for s in steps if s.startswith("secret relaunch-github-app-key |")]  # exists, with a version
    grants = [s.split(" | ")[2] for s in steps if BUILDER in s and "secretmanager" in s]
    assert grants == [
        "gcloud secrets add-iam-policy-binding relaunch-github-app-key --member="
        f"{BUILDER} --role=roles/secretmanager.secretAccessor --project=my-ml-project"
    ]


def test_an_account_that_must_hold_no_secret_cannot_be_given_one() -> None:
    with pytest.raises(ValidationError, match="no_secret_access"):
        ServiceAccount(name="relaunch-trainer", display_name="t", no_secret_access=True, secrets=["k"])
