"""`relaunch launch-queue apply` through the real wandb SDK against the W&B test server, and the shipped configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from relaunch.cli import main
from relaunch.cli.launch_queue import check_vertex_config, read_config
from tests.integration.wandb.conftest import API_KEY
from tests.wandb_server import FakeWandb

ROOT = Path(__file__).resolve().parents[3]
QUEUE_CONFIG = ROOT / "deploy" / "launch" / "queue-config.yaml"
AGENT_CONFIG = ROOT / "deploy" / "launch" / "agent-config.yaml"
SA = "relaunch-trainer@proj-1.iam.gserviceaccount.com"


@pytest.fixture
def env(fake: FakeWandb, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    values = {
        "RELAUNCH_HOME": str(tmp_path / "home"),
        "RELAUNCH_WANDB_API_KEY": API_KEY,
        "RELAUNCH_WANDB_BASE_URL": fake.url,
        "RELAUNCH_WANDB_ENTITY": "team",
        "RELAUNCH_WANDB_LAUNCH_QUEUE": "relaunch-vertex",
        "RELAUNCH_ARTIFACT_ROOT": "gs://proj-1-relaunch/artifacts",
        "RELAUNCH_VERTEX_SERVICE_ACCOUNT": SA,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("RELAUNCH_WANDB_LAUNCH_STAGING_BUCKET", raising=False)
    return monkeypatch


def apply(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    code = main(["launch-queue", "apply", "--file", str(QUEUE_CONFIG), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def test_apply_creates_the_queue_then_changes_nothing(
    fake: FakeWandb, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = apply(capsys)
    assert code == 0 and "created W&B Launch queue team/relaunch-vertex" in out, err
    (upsert,) = fake.called("UpsertRunQueue")
    assert upsert.variables["resourceType"] == "gcp-vertex"  # the queue type the SDK accepts for Vertex
    assert upsert.variables["prioritizationMode"] == "V0"  # relaunch pushes jobs with a priority
    (config,) = json.loads(upsert.variables["resourceConfig"])["resource_args"].values()
    assert config["spec"]["staging_bucket"] == "gs://proj-1-relaunch/artifacts"  # from RELAUNCH_ARTIFACT_ROOT
    assert config["run"]["service_account"] == SA
    assert config["spec"]["worker_pool_specs"][0]["container_spec"]["image_uri"] == "${image_uri}"  # W&B's macro

    code, out, _ = apply(capsys)
    assert code == 0 and out.strip() == "W&B Launch queue team/relaunch-vertex is up to date: nothing changed"
    assert len(fake.called("UpsertRunQueue")) == 1

    env.setenv("RELAUNCH_WANDB_LAUNCH_STAGING_BUCKET", "gs://proj-1-staging")
    code, out, _ = apply(capsys)
    assert code == 0 and out.startswith("updated W&B Launch queue team/relaunch-vertex")
    stored = json.loads(fake.queue_configs[("team", "relaunch-vertex")]["config"])
    assert stored["resource_args"]["gcp-vertex"]["spec"]["staging_bucket"] == "gs://proj-1-staging"


def test_a_job_can_be_pushed_onto_the_applied_queue(
    fake: FakeWandb, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from relaunch.adapters.wandb.launch import WandbLaunchBackend
    from tests.integration.wandb.test_wandb_launch import make_request

    assert apply(capsys)[0] == 0
    backend = WandbLaunchBackend(
        api_key=API_KEY,
        base_url=fake.url,
        entity="team",
        project="digits",
        queue="relaunch-vertex",
        staging_bucket="gs://proj-1-relaunch/artifacts",
    )
    assert backend.submit(make_request()).startswith("team/digits/relaunch-vertex/")


def test_missing_settings_are_named_and_nothing_is_sent(
    fake: FakeWandb, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.delenv("RELAUNCH_WANDB_ENTITY")
    code, _, err = apply(capsys)
    assert code == 2 and "RELAUNCH_WANDB_ENTITY" in err

    env.setenv("RELAUNCH_WANDB_ENTITY", "team")
    env.setenv("RELAUNCH_ARTIFACT_ROOT", "/srv/artifacts")  # no gs:// root to stage in
    code, _, err = apply(capsys)
    assert code == 2 and "RELAUNCH_WANDB_LAUNCH_STAGING_BUCKET" in err and str(QUEUE_CONFIG) in err
    assert fake.calls == []


def test_a_refused_key_is_one_line_without_a_traceback_or_the_key(
    fake: FakeWandb, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("RELAUNCH_WANDB_API_KEY", "x" * 40)
    code, out, err = apply(capsys)
    assert code == 1 and "unauthorized" in err and "Traceback" not in err
    assert "x" * 40 not in out + err and API_KEY not in out + err
    assert not fake.called("UpsertRunQueue")


def test_bad_queue_configs_are_refused_naming_the_field(tmp_path: Path) -> None:
    values = {"RELAUNCH_WANDB_STAGING_BUCKET": "gs://b", "RELAUNCH_VERTEX_SERVICE_ACCOUNT": SA}
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("spec:\n  staging_bucket: ${RELAUNCH_NOPE}\n")
    with pytest.raises(ValueError, match="unknown placeholder"):
        read_config(unknown, values)
    for config, field in [
        ({"spec": {"staging_bucket": "gs://b"}}, "worker_pool_specs"),
        ({"spec": {"worker_pool_specs": [{"replica_count": 1}], "staging_bucket": "gs://b"}}, "container_spec"),
        ({"spec": {"worker_pool_specs": [{"container_spec": {}}]}}, "staging_bucket"),
        ({"spec": {"worker_pool_specs": [{"container_spec": {}}], "staging_bucket": "b"}}, "staging_bucket"),
    ]:
        with pytest.raises(ValueError, match=field):
            check_vertex_config(config)


def test_the_shipped_configs_are_what_the_sdk_accepts() -> None:
    from wandb.sdk.launch.agent.config import AgentConfig

    agent = AgentConfig(**yaml.safe_load(AGENT_CONFIG.read_text()))  # the SDK's own model of launch-config.yaml
    assert agent.environment is not None and agent.environment.type == "gcp" and agent.queues
    values = {"RELAUNCH_WANDB_STAGING_BUCKET": "gs://b/staging", "RELAUNCH_VERTEX_SERVICE_ACCOUNT": SA}
    check_vertex_config(read_config(QUEUE_CONFIG, values))
