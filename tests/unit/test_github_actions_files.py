"""The GitHub workflow and action files: GitHub's published schemas (offline), plus what a schema cannot say.

Schemas: check-jsonschema's vendored copies of SchemaStore's github-workflow and github-action schemas. actionlint
would catch more (expression types, shellcheck), but its Python wheel downloads the binary at build time and this
machine has no network, so it is not used here.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from relaunch.triggers.github import WorkflowDispatchEvent, parse_github

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
EXAMPLES = sorted((ROOT / "github-actions" / "examples").glob("*.yml"))
ACTIONS = sorted((ROOT / "github-actions").glob("*/action.yml"))
REUSABLE = ROOT / ".github" / "workflows" / "relaunch-train.yml"
RETRAIN_ACTION = ROOT / "github-actions" / "retrain" / "action.yml"
SCRIPT = ROOT / "github-actions" / "retrain" / "send_retrain.py"
OWN_ACTION = re.compile(r"^OWNER/relaunch/(github-actions/retrain|\.github/workflows/relaunch-train\.yml)@(\S+)$")
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$")
SECRET_LIKE = re.compile(r"(^|[_-])(secret|token|password|credentials_json)$", re.IGNORECASE)


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    if True in document:  # YAML 1.1 reads the key `on` as the boolean true
        document["on"] = document.pop(True)
    return dict(document)


def check_jsonschema(schema: str, files: list[Path]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, files)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def steps(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Every step of a workflow's jobs, or of a composite action."""
    if "runs" in document:
        return list(document["runs"].get("steps", []))
    return [step for job in document["jobs"].values() for step in job.get("steps", [])]


def expressions(value: Any) -> list[str]:
    """The bodies of every `${{ ... }}` in a value, nested values included."""
    if isinstance(value, dict):
        return [e for v in value.values() for e in expressions(v)]
    if isinstance(value, list):
        return [e for v in value for e in expressions(v)]
    return [m.strip() for m in re.findall(r"\$\{\{(.*?)\}\}", str(value))] if isinstance(value, str) else []


def script_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("send_retrain", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is being built
    spec.loader.exec_module(module)
    return module


send_retrain = script_module()


# -- GitHub's schemas ------------------------------------------------------------------------------------------


def test_the_files_exist() -> None:
    names = {p.name for p in WORKFLOWS}
    assert {"ci.yml", "deploy.yml", "relaunch-train.yml"} <= names
    assert [p.name for p in EXAMPLES] == ["training-repo-retrain.yml"] and ACTIONS == [RETRAIN_ACTION]


def test_workflows_and_the_example_caller_match_githubs_workflow_schema() -> None:
    result = check_jsonschema("vendor.github-workflows", WORKFLOWS + EXAMPLES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actions_match_githubs_action_schema() -> None:
    result = check_jsonschema("vendor.github-actions", ACTIONS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_workflow_and_action(tmp_path: Path) -> None:
    workflow = load(REUSABLE)
    workflow["on"]["workflow_call"]["inputs"]["priority"]["type"] = "integer"  # GitHub knows number, not integer
    del workflow["jobs"]["smoke"]["runs-on"]
    action = load(RETRAIN_ACTION)
    del action["runs"]["steps"][0]["shell"]  # a composite run step must say its shell
    (tmp_path / "workflow.yml").write_text(yaml.safe_dump(workflow))
    (tmp_path / "action.yml").write_text(yaml.safe_dump(action))
    assert check_jsonschema("vendor.github-workflows", [tmp_path / "workflow.yml"]).returncode == 1
    assert check_jsonschema("vendor.github-actions", [tmp_path / "action.yml"]).returncode == 1


# -- what the schemas cannot say -------------------------------------------------------------------------------


def test_the_reusable_workflow_smoke_tests_before_it_hands_over() -> None:
    jobs = load(REUSABLE)["jobs"]
    assert "needs" not in jobs["smoke"] and jobs["retrain"]["needs"] in ("smoke", ["smoke"])
    smoke_run = next(s for s in jobs["smoke"]["steps"] if "RELAUNCH_SMOKE" in s.get("env", {}))
    assert smoke_run["env"]["RELAUNCH_SMOKE"] == "1"
    assert {"RELAUNCH_SMOKE_ROWS", "RELAUNCH_SMOKE_STEPS"} <= set(smoke_run["env"])
    assert smoke_run["run"].startswith("set -euo pipefail") and "$RUNNER_TEMP" in smoke_run["run"]
    # tests/integration/test_retrain_action.py runs this very script on examples/digits
    assert jobs["smoke"]["permissions"] == {"contents": "read"}
    assert jobs["retrain"]["if"] == "inputs.retrain"


def test_pubsub_mode_authenticates_by_workload_identity_federation() -> None:
    retrain = load(REUSABLE)["jobs"]["retrain"]
    assert retrain["permissions"]["id-token"] == "write"
    auth = next(s for s in retrain["steps"] if s.get("uses", "").startswith("google-github-actions/auth@"))
    assert auth["if"] == "inputs.mode == 'pubsub'" and auth["with"]["token_format"] == "access_token"
    assert set(auth["with"]) >= {"workload_identity_provider", "service_account"}
    send = next(s for s in retrain["steps"] if OWN_ACTION.match(s.get("uses", "")))
    assert send["with"]["token"] == "${{ steps.auth.outputs.access_token }}"


def test_the_reusable_workflow_passes_the_action_only_inputs_it_declares() -> None:
    declared = set(load(RETRAIN_ACTION)["inputs"])
    send = next(s for s in steps(load(REUSABLE)) if OWN_ACTION.match(s.get("uses", "")))
    assert set(send["with"]) <= declared
    assert {"mode", "url", "secret", "project", "topic", "token", "pipeline", "reason", "priority"} <= set(send["with"])


def test_the_example_caller_passes_only_what_the_reusable_workflow_declares() -> None:
    call = load(REUSABLE)["on"]["workflow_call"]
    for example in EXAMPLES:
        jobs = [job for job in load(example)["jobs"].values() if "uses" in job]
        assert jobs, f"{example.name} calls no reusable workflow"
        for job in jobs:
            assert job["uses"].startswith("OWNER/relaunch/.github/workflows/relaunch-train.yml@")
            assert set(job.get("with", {})) <= set(call["inputs"]), example.name
            assert set(job.get("secrets", {})) <= set(call["secrets"]), example.name
            # A called workflow gets at most what its caller grants: pubsub mode's auth needs the OIDC token.
            assert job["permissions"]["id-token"] == "write", example.name


@pytest.mark.parametrize("path", WORKFLOWS + EXAMPLES + ACTIONS, ids=lambda p: p.name)
def test_no_expression_is_inlined_into_a_shell_script(path: Path) -> None:
    """Script injection hygiene: `${{ }}` values reach `run:` through `env:` only, where the shell sees data."""
    for step in steps(load(path)):
        assert "${{" not in step.get("run", ""), f"{path.name}: step {step.get('name') or step.get('id')}"


@pytest.mark.parametrize("path", WORKFLOWS + EXAMPLES + ACTIONS, ids=lambda p: p.name)
def test_secrets_are_only_referenced_through_secrets(path: Path) -> None:
    document = load(path)
    for step in steps(document):
        for key, value in {**step.get("with", {}), **step.get("env", {})}.items():
            if SECRET_LIKE.search(key) and path != RETRAIN_ACTION:
                found = expressions(value)
                trusted = [e for e in found if e.startswith("secrets.") or re.fullmatch(r"steps\.\w+\.outputs\.\w+", e)]
                assert found and trusted == found, f"{path.name}: {key} = {value!r} is not from secrets.*"
    call = document.get("on", {}).get("workflow_call", {}) if isinstance(document.get("on"), dict) else {}
    leaking = [name for name in call.get("inputs", {}) if SECRET_LIKE.search(name)]
    assert not leaking, f"{path.name}: {leaking} must be declared under secrets, not inputs (inputs are logged)"
    referenced = {e.split(".")[1] for e in expressions(document) if e.startswith("secrets.")}
    if call:
        assert referenced <= set(call.get("secrets", {})), f"{path.name}: undeclared secrets {referenced}"


def test_the_action_hands_every_input_to_the_script_through_its_environment() -> None:
    action = load(RETRAIN_ACTION)
    (step,) = action["runs"]["steps"]
    script_env = {f"RETRAIN_{flag.upper()}" for flag in send_retrain.FLAGS.split()}
    script_env |= {send_retrain.SECRET_ENV, send_retrain.TOKEN_ENV}
    assert set(step["env"]) <= script_env
    forwarded = {expression.removeprefix("inputs.") for expression in expressions(step["env"])}
    assert forwarded == set(action["inputs"])
    assert step["run"] == 'python3 "$GITHUB_ACTION_PATH/send_retrain.py"'
    outputs = {e.removeprefix("steps.send.outputs.") for e in expressions(action["outputs"])}
    assert outputs == {"outcome", "runs", "answer", "message-id", "request-id", "delivery-id"}


def test_third_party_actions_are_pinned_and_relaunch_refs_agree() -> None:
    own_refs = set()
    for path in WORKFLOWS + EXAMPLES + ACTIONS:
        document = load(path)
        uses = [s["uses"] for s in steps(document) if "uses" in s]
        uses += [job["uses"] for job in document.get("jobs", {}).values() if "uses" in job]
        for ref in uses:
            own = OWN_ACTION.match(ref)
            if own:
                own_refs.add(own.group(2))
            else:
                assert PINNED.match(ref), f"{path.name}: {ref} is not pinned to a major version or a commit"
    assert len(own_refs) == 1, f"relaunch's own workflow and action are referenced at different refs: {own_refs}"


def test_ci_runs_the_ci_script_on_pushes_and_pull_requests() -> None:
    ci = load(ROOT / ".github" / "workflows" / "ci.yml")
    assert {"push", "pull_request"} <= set(ci["on"])
    assert [s["run"] for s in steps(ci) if "run" in s] == [".ci/run"]
    assert (ROOT / ".ci" / "run").stat().st_mode & 0o111, ".ci/run must be executable"


def test_deploy_submits_the_cloud_build_config_with_its_substitutions() -> None:
    deploy = load(ROOT / ".github" / "workflows" / "deploy.yml")
    assert "workflow_dispatch" in deploy["on"] and deploy["permissions"]["id-token"] == "write"
    submit = next(s["run"] for s in steps(deploy) if "gcloud builds submit" in s.get("run", ""))
    assert "--config=cloudbuild/deploy.yaml" in submit
    assert '--substitutions="_REGION=$REGION,_TRIGGERS_FILE=$TRIGGERS_FILE"' in submit
    config = ROOT / "cloudbuild" / "deploy.yaml"
    if config.exists():  # written by the cloudbuild helper: its substitutions must include the ones sent
        assert {"_REGION", "_TRIGGERS_FILE"} <= set(yaml.safe_load(config.read_text()).get("substitutions", {}))


# -- send_retrain.py's pure parts ------------------------------------------------------------------------------


def request(**overrides: str) -> Any:
    values = {flag: send_retrain.DEFAULTS.get(flag, "") for flag in send_retrain.FLAGS.split()}
    values |= {"repo": "relaunch-demo/digits", "ref": "main", "run_id": "4242", "pipeline": "digits"} | overrides
    return send_retrain.build_request(values, "relaunch-demo/digits/.github/workflows/train.yml@refs/heads/main")


def test_the_signature_matches_githubs_published_test_vector() -> None:
    vector = json.loads((ROOT / "tests" / "samples" / "github" / "signature_vector.json").read_text())
    headers = send_retrain.webhook_headers(vector["payload"].encode(), vector["secret"], "d-1")
    assert headers["X-Hub-Signature-256"] == vector["x_hub_signature_256"]


def test_the_webhook_body_is_a_dispatch_relaunch_acts_on() -> None:
    sent = request(reason="nightly", priority="42")
    body = send_retrain.webhook_body(sent)
    headers = send_retrain.webhook_headers(body, "k3y", sent.delivery_id)
    event = parse_github(headers, body, secret="k3y")
    assert isinstance(event, WorkflowDispatchEvent)
    assert (event.repo, event.ref) == ("relaunch-demo/digits", "refs/heads/main")
    assert event.workflow == ".github/workflows/train.yml" and event.sender == "github-actions"
    assert event.inputs == {"pipeline": "digits", "reason": "nightly", "priority": "42"}
    assert event.delivery_id == sent.delivery_id


def test_the_delivery_id_is_stable_per_run_attempt_and_pipeline() -> None:
    first = request()
    assert first.delivery_id == request().delivery_id and first.request_id == "4242-1-digits"
    others = {
        request(**change).delivery_id for change in ({"run_attempt": "2"}, {"pipeline": "other"}, {"run_id": "1"})
    }
    assert first.delivery_id not in others and len(others) == 3
    assert request(pipeline="").request_id == "4242-1"


def test_the_command_carries_exactly_the_retrain_fields() -> None:
    data = send_retrain.command_data(request(reason="drifted", priority="50", sender="octocat"))
    assert data == {
        "type": "retrain",
        "repo": "relaunch-demo/digits",
        "ref": "refs/heads/main",
        "pipeline": "digits",
        "reason": "drifted",
        "priority": 50,
        "requested_by": "octocat",
        "request_id": "4242-1-digits",
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"priority": "101"}, "priority must be from 0 to 100, got 101"),
        ({"priority": "-1"}, "priority must be an integer from 0 to 100"),
        ({"priority": "1.5"}, "priority must be an integer from 0 to 100"),
        ({"pipeline": "Digits"}, "pipeline must be a pipeline name"),
        ({"repo": "not-a-repo"}, "repo must be owner/name"),
        ({"run_id": ""}, "run_id is required"),
        ({"ref": " "}, "ref is required"),
        ({"reason": "x" * 301}, "reason must be at most 300 characters"),
    ],
)
def test_bad_inputs_are_refused_naming_the_input(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(send_retrain.InputError, match=re.escape(message)):
        request(**overrides)


@pytest.mark.parametrize(
    ("status", "answer", "message"),
    [
        (401, {"error": "X-Hub-Signature-256 does not match the body", "field": "X-Hub-Signature-256"}, "401"),
        (422, {"error": "inputs.pipeline 'x' does not watch r", "field": "inputs.pipeline"}, "inputs.pipeline"),
        (202, {"outcome": "ignored", "reason": "no pipeline watches a/b"}, "ignored: no pipeline watches a/b"),
        (202, {"outcome": "skipped", "runs": [], "skipped": {"digits": "no literal branch"}}, "digits: no literal"),
    ],
)
def test_answers_that_start_no_run_fail_the_step(status: int, answer: dict[str, Any], message: str) -> None:
    with pytest.raises(send_retrain.SendError, match=re.escape(message)):
        send_retrain.judge_webhook(status, json.dumps(answer))


def test_accepted_and_duplicate_answers_succeed() -> None:
    accepted = send_retrain.judge_webhook(202, json.dumps({"outcome": "accepted", "runs": ["digits-1"]}))
    duplicate = send_retrain.judge_webhook(200, json.dumps({"outcome": "duplicate", "runs": ["digits-1"]}))
    assert accepted.outputs["runs"] == duplicate.outputs["runs"] == "digits-1"
    assert (accepted.outputs["outcome"], duplicate.outputs["outcome"]) == ("accepted", "duplicate")


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://x.cloudfunctions.net/github_webhook", True),
        ("http://127.0.0.1:8080/", True),
        ("http://relaunch.example.com/hook", False),
        ("ftp://127.0.0.1/", False),
        ("", False),
    ],
)
def test_urls_must_be_https_except_to_this_machine(url: str, ok: bool) -> None:
    if ok:
        assert send_retrain.check_url(url, "url") == url
    else:
        with pytest.raises(send_retrain.InputError, match="^url "):
            send_retrain.check_url(url, "url")
