"""The triggers file: the example validates; a broken table fails naming the file and the field."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from relaunch.config_files import load_specs
from relaunch.deploy.crosscheck import warnings
from relaunch.deploy.infra import Infra
from relaunch.deploy.infra_file import InfraError, load_infra
from relaunch.deploy.validators import check_cron, check_time_zone, secret_like_key, secret_shape
from relaunch.domain.spec import PipelineSpec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "triggers" / "relaunch.yaml"
SPECS = load_specs(ROOT / "pipelines")
RAW: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())


def load_changed(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Infra:
    raw = copy.deepcopy(RAW)
    change(raw)
    path = tmp_path / "relaunch.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_infra(path, SPECS)


def fails(tmp_path: Path, change: Callable[[dict[str, Any]], None], field: str, why: str) -> str:
    with pytest.raises(InfraError) as failed:
        load_changed(tmp_path, change)
    message = str(failed.value)
    assert message.startswith(f"{tmp_path / 'relaunch.yaml'}: "), message
    assert f"{field}: " in message and why in message, message
    return message


def function(raw: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in raw["functions"] if f["name"] == name)


def test_the_example_validates_against_the_pipelines() -> None:
    infra = load_infra(EXAMPLE, SPECS)
    assert (infra.project, infra.region) == ("my-ml-project", "us-central1")
    assert {f.entry_point for f in infra.functions} == {
        "github_webhook",
        "wandb_webhook",
        "orchestrator",
        "drift_alert",
        "schedule_tick",
        "build_status",
        "vertex_job",
        "reconcile",
        "dashboard",
    }
    assert [s.pipeline for s in infra.schedules] == ["digits"]


@pytest.mark.parametrize(
    ("change", "field", "why"),
    [
        (lambda r: r["topics"][0].update(nmae="x"), "topics.0.nmae", "Extra inputs are not permitted"),
        (lambda r: r.update(regoin="x"), "regoin", "Extra inputs are not permitted"),
        (lambda r: r["functions"][0].update(trigger="grpc"), "functions.0.trigger", "'http' or 'pubsub'"),
        (
            lambda r: r["schedules"][0].update(schedule="61 * * * *"),
            "schedules.0.schedule",
            "minute: '61' is not between 0 and 59",
        ),
        (lambda r: r["schedules"][0].update(schedule="0 3 * *"), "schedules.0.schedule", "a schedule has 5 fields"),
        (
            lambda r: r["schedules"][0].update(schedule="0 9-5 * * *"),
            "schedules.0.schedule",
            "range '9-5' runs backwards",
        ),
        (lambda r: r["schedules"][0].update(time_zone="Mars/Olympus"), "schedules.0.time_zone", "not a tz database"),
        (
            lambda r: r["triggers"][0].update(retry_policy={"min_backoff_s": 60, "max_backoff_s": 10}),
            "triggers.0.retry_policy",
            "larger than",
        ),
        (
            lambda r: r["wandb"]["automations"][0].pop("alias"),
            "wandb.automations.0",
            "alias is required for ADD_ARTIFACT_ALIAS",
        ),
        (
            lambda r: r["service_accounts"][0].update(roles=["datastore.user"]),
            "service_accounts.0.roles.0",
            "should match pattern",
        ),
    ],
)
def test_a_bad_table_fails_naming_its_field(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], field: str, why: str
) -> None:
    fails(tmp_path, change, field, why)


def _two_triggers(raw: dict[str, Any]) -> None:
    raw["triggers"].append({**raw["triggers"][0], "topic": "relaunch-drift"})


@pytest.mark.parametrize(
    ("change", "field", "why"),
    [
        (
            lambda r: r["triggers"][0].update(topic="relaunch-comands"),
            "triggers[0].topic",
            "'relaunch-comands' is not a declared topic",
        ),
        (
            lambda r: r["subscriptions"][0].update(topic="nope"),
            "subscriptions[0].topic",
            "'nope' is not a declared topic",
        ),
        (
            lambda r: r["triggers"][0]["dead_letter"].update(topic="relaunch-commands"),
            "triggers[0].dead_letter.topic",
            "must differ",
        ),
        (lambda r: r["triggers"][0].update(retry=False), "triggers[0].retry", "need retry: true"),
        (lambda r: r["triggers"].pop(0), "functions[2]", "needs exactly one trigger, 'relaunch-orchestrator' has 0"),
        (_two_triggers, "functions[2]", "'relaunch-orchestrator' has 2"),
        (
            lambda r: r["triggers"].append({**r["triggers"][0], "function": "relaunch-github-webhook"}),
            "triggers[6].function",
            "is an HTTP function",
        ),
        (
            lambda r: function(r, "relaunch-orchestrator").update(trigger="http"),
            "functions[2].trigger",
            "orchestrator is a pubsub function",
        ),
        (
            lambda r: function(r, "relaunch-orchestrator").update(timeout_s=900),
            "functions[2].timeout_s",
            "an event-driven function runs at most 540 s",
        ),
        (
            lambda r: function(r, "relaunch-orchestrator").update(entry_point="orchestrate"),
            "functions[2].entry_point",
            "is not one of",
        ),
        (
            lambda r: function(r, "relaunch-drift-alert").update(publishes=[]),
            "functions[4].publishes",
            "list 'relaunch-commands'",
        ),
        (
            lambda r: function(r, "relaunch-drift-alert").update(service_account="relaunch-x"),
            "functions[4].service_account",
            "not a declared service account",
        ),
        (
            lambda r: r["service_accounts"][1].update(act_as=["relaunch-nobody"]),
            "service_accounts[1].act_as",
            "not a declared service account",
        ),
        (
            lambda r: r["service_accounts"][1].update(bucket_roles={"other-bucket": ["roles/storage.objectViewer"]}),
            "service_accounts[1].bucket_roles",
            "not a declared bucket",
        ),
        (lambda r: r["topics"].append({"name": "relaunch-drift"}), "topics", "'relaunch-drift' is declared 2 times"),
        (
            lambda r: r["schedules"][0].update(pipeline="digitz"),
            "schedules[0].pipeline",
            "no pipeline 'digitz' (pipelines: digits)",
        ),
        (
            lambda r: r["schedules"][0].update(topic="relaunch-drift"),
            "schedules[0].topic",
            "no trigger delivers 'relaunch-drift' to a schedule_tick",
        ),
        (lambda r: r["drift_sink"].update(topic="relaunch-schedule"), "drift_sink.topic", "to a drift_alert function"),
        (lambda r: r["job_sink"].update(topic="relaunch-schedule"), "job_sink.topic", "to a vertex_job function"),
        (lambda r: r["job_sink"].update(topic="relaunch-nowhere"), "job_sink.topic", "not a declared topic"),
        (
            lambda r: r["github_webhooks"][0].update(repo="someone/else"),
            "github_webhooks[0].repo",
            "no pipeline watches someone/else",
        ),
        (
            lambda r: r["github_webhooks"][0].update(secret="another-secret"),
            "github_webhooks[0].secret",
            "must be the secret relaunch-github-webhook reads",
        ),
        (
            lambda r: function(r, "relaunch-github-webhook").update(secrets={}),
            "functions[0].secrets",
            "github_webhook needs RELAUNCH_GITHUB_WEBHOOK_SECRET",
        ),
        (
            lambda r: r["wandb"]["automations"][0].update(function="relaunch-github-webhook"),
            "wandb.automations[0].function",
            "not a declared wandb_webhook function",
        ),
        (lambda r: r["env"].update(RELAUNCH_GCP_PROJEKT="x"), "env.RELAUNCH_GCP_PROJEKT", "not a relaunch setting"),
        (
            lambda r: r["env"].update(RELAUNCH_MAX_CONCURRENT_JOBS="0"),
            "env.RELAUNCH_MAX_CONCURRENT_JOBS",
            "greater than or equal to 1",
        ),
        (
            lambda r: r["env"].update(RELAUNCH_GCP_PROJECT="other-project"),
            "env.RELAUNCH_GCP_PROJECT",
            "set by deploy from project and region",
        ),
        (
            lambda r: r["env"].update(RELAUNCH_VERTEX_SERVICE_ACCOUNT="x@y.iam.gserviceaccount.com"),
            "env.RELAUNCH_VERTEX_SERVICE_ACCOUNT",
            "not a declared service account's email",
        ),
    ],
)
def test_a_broken_reference_fails_naming_its_field(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], field: str, why: str
) -> None:
    fails(tmp_path, change, field, why)


@pytest.mark.parametrize(
    ("change", "field", "why"),
    [
        (
            lambda r: r["env"].update(RELAUNCH_GITHUB_TOKEN="abc"),
            "env.RELAUNCH_GITHUB_TOKEN",
            "looks like a secret: reference it under secrets",
        ),
        (lambda r: r["env"].update(MY_API_KEY="abc"), "env.MY_API_KEY", "looks like a secret"),
        (lambda r: r["env"].update(NOTES="ghp_" + "a1B2" * 9), "env.NOTES", "the value looks like a GitHub token"),
        (
            lambda r: (
                function(r, "relaunch-orchestrator")
                .setdefault("env", {})
                .update(HOOK="https://hooks.slack.com/services/T0/B0/x")
            ),
            "functions[2].env.HOOK",
            "a Slack webhook URL",
        ),
        (
            lambda r: function(r, "relaunch-orchestrator")["secrets"].update(
                RELAUNCH_SLACK_WEBHOOK_URL="xoxb-1234567890-abcdef"
            ),
            "functions[2].secrets.RELAUNCH_SLACK_WEBHOOK_URL",
            "looks like a Slack token",
        ),
        (
            lambda r: function(r, "relaunch-orchestrator")["secrets"].update(RELAUNCH_GITHUB_TOKEN="ghp/not a name"),
            "functions.2.secrets.RELAUNCH_GITHUB_TOKEN",
            "should match pattern",
        ),
        (
            lambda r: function(r, "relaunch-orchestrator")["secrets"].update(RELAUNCH_GCP_PROJECT="x"),
            "functions[2].secrets.RELAUNCH_GCP_PROJECT",
            "not a secret setting",
        ),
        (
            lambda r: r["wandb"].update(api_key_secret="0123456789abcdef0123456789abcdef01234567"),
            "wandb.api_key_secret",
            "must name a Secret Manager secret",
        ),
    ],
)
def test_an_inline_secret_is_refused(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], field: str, why: str
) -> None:
    message = fails(tmp_path, change, field, why)
    assert "ghp_a1B2" not in message and "xoxb-1234567890" not in message  # an error never repeats the secret


def test_a_file_that_is_not_a_mapping_or_not_yaml_is_named(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("- a list\n")
    with pytest.raises(InfraError, match=rf"^{path}: expected a mapping at the top level$"):
        load_infra(path, SPECS)
    path.write_text("project: [unclosed\n")
    with pytest.raises(InfraError, match=rf"^{path}: cannot read YAML: "):
        load_infra(path, SPECS)
    with pytest.raises(InfraError, match="cannot read YAML"):
        load_infra(tmp_path / "missing.yaml", SPECS)


def test_without_pipelines_the_pipeline_checks_are_skipped(tmp_path: Path) -> None:
    raw = copy.deepcopy(RAW)
    raw["schedules"][0]["pipeline"] = "elsewhere"
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert load_infra(path, None).schedules[0].pipeline == "elsewhere"


def test_a_wandb_automation_no_pipeline_acts_on_is_a_warning() -> None:
    infra = load_infra(EXAMPLE, SPECS)
    assert SPECS["digits"].source.wandb is not None and warnings(infra, SPECS) == []  # the example is consistent
    digits = SPECS["digits"]
    unwatched: dict[str, PipelineSpec] = {
        "digits": digits.model_copy(update={"source": digits.source.model_copy(update={"wandb": None})})
    }
    assert warnings(infra, unwatched) == [
        "W&B automation relaunch-digits-candidate: no pipeline's source.wandb watches "
        "relaunch-demo/digits/digits-model; wandb_webhook will answer its events 202 ignored until one does"
    ]


@pytest.mark.parametrize(
    "good", ["* * * * *", "*/15 0-6 * jan-mar mon-fri", "0 3 1,15 * 0", "30 2 * * 7", "0 */2 * * SUN"]
)
def test_valid_cron_schedules(good: str) -> None:
    assert check_cron(good) == good


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("* * * *", "5 fields"),
        ("60 * * * *", "minute"),
        ("* 24 * * *", "hour"),
        ("* * 0 * *", "day of month"),
        ("* * * 13 *", "month"),
        ("* * * * 8", "day of week"),
        ("*/0 * * * *", "bad step"),
        ("1- * * * *", "minute"),
        ("* * * foo *", "month"),
    ],
)
def test_invalid_cron_schedules(bad: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        check_cron(bad)


def test_time_zones_and_secret_shapes() -> None:
    assert check_time_zone("Europe/Paris") == "Europe/Paris"
    with pytest.raises(ValueError):
        check_time_zone("CEST+2")
    assert secret_shape("github_pat_" + "x" * 30) == "a GitHub token"
    assert secret_shape("https://user:pa55@example.com/x") == "a URL with a password"
    assert secret_shape("gs://my-ml-project-relaunch/artifacts") is None
    assert secret_shape("relaunch-github-webhook-secret") is None
    assert secret_like_key("RELAUNCH_WANDB_WEBHOOK_TOKEN") and not secret_like_key("RELAUNCH_ARTIFACT_ROOT")
