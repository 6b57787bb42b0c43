"""The training service account runs code from pushes and pull requests: it may read the registry's prefix, write
runs' outputs, and nothing else; it holds no role that reads a secret. `relaunch deploy --dry-run` shows each."""

from __future__ import annotations

from pathlib import Path

from relaunch.config_files import load_specs
from relaunch.deploy import load_infra
from relaunch.deploy.command import render
from relaunch.deploy.plan import build_plan

ROOT = Path(__file__).resolve().parents[2]
SPECS = load_specs(ROOT / "pipelines")
PLAN = build_plan(load_infra(ROOT / "triggers" / "relaunch.yaml", SPECS), SPECS)
TRAINER = "serviceAccount:relaunch-trainer@my-ml-project.iam.gserviceaccount.com"


def trainer_grants() -> list[str]:
    """Every command that grants the trainer something."""
    return [render(s.create) for s in PLAN.steps if s.create is not None and TRAINER in render(s.create)]


def test_the_trainer_has_no_unconditional_role_on_the_bucket() -> None:
    bucket_grants = [g for g in trainer_grants() if "storage buckets add-iam-policy-binding" in g]
    assert bucket_grants and all("--condition=expression=" in g for g in bucket_grants)


def test_the_trainer_writes_only_runs_and_reads_the_registry() -> None:
    grants = trainer_grants()
    runs = 'resource.name.startsWith("projects/_/buckets/my-ml-project-relaunch/objects/artifacts/runs/")'
    registry = 'resource.name.startsWith("projects/_/buckets/my-ml-project-relaunch/objects/artifacts/registry/")'
    assert any(runs in g and "--role=roles/storage.objectAdmin" in g for g in grants)
    assert any(registry in g and "--role=roles/storage.objectViewer" in g for g in grants)
    assert not any(registry in g and "objectAdmin" in g for g in grants)


def test_the_trainer_holds_no_secret_manager_role_and_deploy_checks_it() -> None:
    assert not [g for g in trainer_grants() if "secret" in g]
    checks = [s for s in PLAN.steps if s.id.endswith("for relaunch-trainer") and "secretmanager" in s.id]
    assert len(checks) == 1 and checks[0].create is None and checks[0].expect == ""
    assert "get-iam-policy my-ml-project" in render(checks[0].describe) and "remove it" in checks[0].missing
