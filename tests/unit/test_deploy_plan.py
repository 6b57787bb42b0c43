"""The deploy plan of the example triggers file: complete, in dependency order, printable as a script, and kept as a
golden file (`UPDATE_GOLDEN=1 python3 -m pytest tests/unit/test_deploy_plan.py` rewrites it)."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import subprocess
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from relaunch import cli
from relaunch.config_files import load_specs
from relaunch.deploy import load_infra
from relaunch.deploy import wandb_automation as wandb_helper
from relaunch.deploy.command import Capture, Cmd, SourceDigest, Word, captures, cmd, render, render_arg, word
from relaunch.deploy.digest import main as digest_main
from relaunch.deploy.digest import source_digest
from relaunch.deploy.dryrun import render_plan
from relaunch.deploy.infra import Infra
from relaunch.deploy.plan import SECTIONS, Plan, build_plan
from relaunch.deploy.plan_outbound import WANDB_PAYLOAD
from relaunch.deploy.step import Step
from relaunch.triggers.wandb import WandbEvent, parse_wandb

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "triggers" / "relaunch.yaml"
GOLDEN = ROOT / "tests" / "golden" / "deploy_dry_run.txt"
SPECS = load_specs(ROOT / "pipelines")


@pytest.fixture(scope="module")
def infra() -> Infra:
    return load_infra(EXAMPLE, SPECS)


@pytest.fixture(scope="module")
def plan(infra: Infra) -> Plan:
    return build_plan(infra, SPECS)


def commands(step: Step) -> list[Cmd]:
    return [c for c in (step.describe, step.create, step.update) if c is not None]


def text(step: Step) -> str:
    """Every command of a step, and what its check expects, as shell text (what the order checks search)."""
    expect = [render_arg(step.expect)] if step.expect is not None else []
    return "\n".join([*(render(c) for c in commands(step)), *expect])


def index(plan: Plan, step_id: str) -> int:
    return next(i for i, s in enumerate(plan.steps) if s.id == step_id)


def test_dry_run_output_matches_the_golden_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("RELAUNCH_PIPELINES_DIR", raising=False)
    out = io.StringIO()
    with redirect_stdout(out):
        code = cli.main(["deploy", "--dry-run", "--file", "triggers/relaunch.yaml"])
    assert code == 0
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(out.getvalue())
    assert out.getvalue() == GOLDEN.read_text(), "the plan changed: review, then rerun with UPDATE_GOLDEN=1"


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash checks the script's syntax")
def test_the_dry_run_is_a_script_bash_accepts(plan: Plan) -> None:
    script = render_plan(plan, "triggers/relaunch.yaml")
    done = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    for line in script.splitlines():
        if line and not line.startswith("#"):
            shlex.split(line)  # one complete command per line: balanced quotes


def test_the_plan_is_complete(infra: Infra, plan: Plan) -> None:
    ids = {s.id for s in plan.steps}
    expected = {f"api {a}" for a in infra.apis}
    expected |= {f"service account {sa.name}" for sa in infra.service_accounts}
    expected |= {f"topic {t.name}" for t in infra.topics} | {f"subscription {s.name}" for s in infra.subscriptions}
    expected |= {f"function {f.name}" for f in infra.functions}
    expected |= {
        f"trigger {t.function}: subscription policy" for t in infra.triggers if t.dead_letter or t.retry_policy
    }
    expected |= {f"scheduler job {job.job}" for job in infra.schedules} | {"scheduler job relaunch-reconcile"}
    expected |= {"log sink relaunch-model-monitoring", "github webhook relaunch-demo/digits"}
    expected |= {"wandb integration relaunch-demo/relaunch", "wandb automation relaunch-demo/relaunch-digits-candidate"}
    expected |= {f"secret {n}" for f in infra.functions for n in f.secrets.values()}
    expected |= {"bucket my-ml-project-relaunch", "firestore (default)", "image repository relaunch"}
    assert expected <= ids
    assert len(ids) == len(plan.steps), "step ids are unique"
    invokers = {s.id for s in plan.steps if "roles/run.invoker" in s.id}
    assert invokers == {
        f"iam function {f.name}: roles/run.invoker for relaunch-events"
        for f in infra.functions
        if f.trigger == "pubsub"
    }


def test_sections_come_in_dependency_order(plan: Plan) -> None:
    positions = [SECTIONS.index(s.section) for s in plan.steps]
    assert positions == sorted(positions)


def test_a_topic_comes_before_anything_that_uses_it(infra: Infra, plan: Plan) -> None:
    for topic in infra.topics:
        created = index(plan, f"topic {topic.name}")
        pattern = re.compile(
            rf"(topic=|topics/|topics add-iam-policy-binding |topic-project=){re.escape(topic.name)}\b"
        )
        users = [i for i, s in enumerate(plan.steps) if s.section != "topics" and pattern.search(text(s))]
        assert users, f"nothing uses {topic.name}"
        assert min(users) > created, f"{plan.steps[min(users)].id} uses {topic.name} before it exists"


def test_a_function_comes_before_its_trigger_policy_invoker_and_url_users(infra: Infra, plan: Plan) -> None:
    for f in infra.functions:
        if f.entry_point == "dashboard":  # a person opens it: nothing in the plan uses its URL
            continue
        deployed = index(plan, f"function {f.name}")
        users = [i for i, s in enumerate(plan.steps) if i != deployed and f"functions describe {f.name} " in text(s)]
        users += [i for i, s in enumerate(plan.steps) if f"function {f.name}:" in s.id or f"trigger {f.name}:" in s.id]
        assert users and min(users) > deployed, f.name


def test_accounts_and_secrets_exist_before_what_uses_them(infra: Infra, plan: Plan) -> None:
    for sa in infra.service_accounts:
        created = index(plan, f"service account {sa.name}")
        users = [i for i, s in enumerate(plan.steps) if i != created and infra.sa_email(sa.name) in text(s)]
        assert users and min(users) > created, sa.name
    for f in infra.functions:
        deployed = index(plan, f"function {f.name}")
        assert all(index(plan, f"secret {name}") < deployed for name in f.secrets.values())


def test_every_gcloud_command_names_the_project_and_the_region(plan: Plan) -> None:
    for step in plan.steps:
        inner = [cap.cmd for outer in commands(step) for cap in captures(outer)]
        for c in [*commands(step), *inner]:
            line = render(c)
            if c.argv[0] == "gcloud":
                assert "--project=my-ml-project" in c.argv, line
            regions = set(re.findall(r"--(?:region|location)=([a-z0-9-]+)", line))
            assert regions <= {"us-central1"}, line


def test_secret_values_never_reach_an_argv(plan: Plan) -> None:
    for step in plan.steps:
        for c in commands(step):
            for arg in c.argv:
                parts = arg.parts if isinstance(arg, Word) else (arg,)
                assert not any(isinstance(p, Capture) and p.secret for p in parts), f"{step.id}: a secret in argv"
    piped = [s for s in plan.steps if s.create and s.create.stdin and s.create.stdin.secret]
    assert [s.id for s in piped] == ["github webhook relaunch-demo/digits"]


def test_functions_are_deployed_as_declared(infra: Infra, plan: Plan) -> None:
    for f in infra.functions:
        argv = plan.steps[index(plan, f"function {f.name}")].create.argv  # type: ignore[union-attr]
        assert argv[:6] == ("gcloud", "functions", "deploy", f.name, "--gen2", "--region=us-central1")
        assert (
            "--runtime=python311" in argv and "--source=functions" in argv and f"--entry-point={f.entry_point}" in argv
        )
        trigger = infra.trigger_of(f.name)
        if f.trigger == "http":
            assert "--trigger-http" in argv and "--allow-unauthenticated" in argv
        else:
            assert trigger is not None and f"--trigger-topic={trigger.topic}" in argv
            assert ("--retry" in argv) == trigger.retry and "--no-allow-unauthenticated" in argv
        secrets = ",".join(f"{k}={v}:latest" for k, v in sorted(f.secrets.items()))
        assert (f"--set-secrets={secrets}" if secrets else "--clear-secrets") in argv
        rendered = [render_arg(a) for a in argv]  # the environment holds a deploy-time value: the dashboard's URL
        assert "RELAUNCH_PROFILE=gcp" in next(a for a in rendered if a.lstrip("'").startswith("--set-env-vars="))


def test_a_function_s_config_label_follows_its_declaration(infra: Infra) -> None:
    def label(i: Infra) -> str:
        step = build_plan(i, SPECS).steps[index(build_plan(i, SPECS), "function relaunch-orchestrator")]
        return str(step.expect.parts[0])  # type: ignore[union-attr]

    bigger = infra.model_copy(
        update={
            "functions": [
                f.model_copy(update={"memory": "2Gi"}) if f.name == "relaunch-orchestrator" else f
                for f in infra.functions
            ]
        }
    )
    assert label(infra) == label(infra.model_copy()) != label(bigger)


def test_environment_values_with_commas_use_gcloud_s_alternate_delimiter(infra: Infra) -> None:
    env = {**infra.env, "RELAUNCH_PUBLIC_URL": "https://relaunch.example/runs?a=1,2"}
    step = build_plan(infra.model_copy(update={"env": env}), SPECS).steps
    argv = next(s.create.argv for s in step if s.id == "function relaunch-orchestrator")  # type: ignore[union-attr]
    flag = next(str(a) for a in argv if str(a).startswith("--set-env-vars="))
    match = re.fullmatch(r"--set-env-vars=\^(.)\^(.*)", flag)
    assert match, flag
    items = dict(item.split("=", 1) for item in match.group(2).split(match.group(1)))
    assert items["RELAUNCH_PUBLIC_URL"] == "https://relaunch.example/runs?a=1,2" and items == {
        "RELAUNCH_PROFILE": "gcp",
        "RELAUNCH_GCP_PROJECT": "my-ml-project",
        "RELAUNCH_GCP_REGION": "us-central1",
        **env,
    }


def test_the_default_wandb_payload_is_the_documented_template_and_wandb_webhook_parses_it() -> None:
    readme = (ROOT / "README.md").read_text()
    documented = json.loads(re.search(r'```json\n(\{\n  "event_type".*?\})\n```', readme, re.S).group(1))  # type: ignore[union-attr]
    assert WANDB_PAYLOAD == documented
    values = {
        "event_type": "ADD_ARTIFACT_ALIAS",
        "artifact_version_string": "relaunch-demo/digits/digits-model:candidate",
        "artifact_collection_name": "digits-model",
        "alias": "candidate",
        "entity_name": "relaunch-demo",
        "project_name": "digits",
        "event_author": "ada",
        "artifact_version": "wandb-artifact://_id/QXJ0aWZhY3Q6NTE3ODg5ODg3",  # as W&B's docs show it rendered
    }
    body = json.dumps({k: v.replace("${" + k + "}", values[k]) for k, v in WANDB_PAYLOAD.items()}).encode()
    headers = {"Content-Type": "application/json", "Authorization": "Bearer t"}
    event = parse_wandb(headers, body, token="t", secret=None)
    assert isinstance(event, WandbEvent) and event.alias == "candidate"


def test_commands_render_as_shell_with_deploy_time_values_substituted() -> None:
    number = Capture(cmd("gcloud", "projects", "describe", "p", "--format=value(projectNumber)"))
    member = word("serviceAccount:service-", number, "@gcp-sa-pubsub.iam.gserviceaccount.com")
    line = render(cmd("gcloud", "x", word("--member=", member), "it's"))
    assert line == (
        "gcloud x --member=serviceAccount:service-\"$(gcloud projects describe p '--format=value(projectNumber)')\""
        "@gcp-sa-pubsub.iam.gserviceaccount.com 'it'\"'\"'s'"
    )
    secret = Capture(cmd("gcloud", "secrets", "versions", "access", "latest", "--secret=s"), secret=True)
    assert (
        render(cmd("gh", "api", "-F", "x=@-", stdin=secret))
        == "gcloud secrets versions access latest --secret=s | gh api -F x=@-"
    )
    assert render(cmd("tool", env=[("KEY", secret)])).startswith('KEY="$(gcloud secrets versions access')
    assert render(cmd("a", SourceDigest("functions"))) == 'a "$(python3 -m relaunch.deploy.digest functions)"'
    assert word("a", "b", "") == "ab" and captures(cmd("x", member)) == [number]


def test_the_source_digest_follows_the_files_and_ignores_caches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "main.py").write_text("a")
    first = source_digest(tmp_path)
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\0")
    assert source_digest(tmp_path) == first and re.fullmatch(r"[0-9a-f]{16}", first)
    (tmp_path / "main.py").write_text("b")
    assert source_digest(tmp_path) != first
    assert digest_main([str(tmp_path)]) == 0 and capsys.readouterr().out == f"{source_digest(tmp_path)}\n"
    assert digest_main([str(tmp_path / "nope")]) == 1


class FakeWandbApi:
    """The slice of wandb.Api the automation helper uses, in memory."""

    def __init__(self, hooks: list[Any], automations: list[Any]) -> None:
        self.hooks, self.existing, self.created = hooks, automations, []  # type: ignore[var-annotated]

    def webhook_integrations(self, entity: str) -> list[Any]:
        return self.hooks

    def automations(self, entity: str, name: str) -> list[Any]:
        return [a for a in self.existing if a.name == name]

    def artifact_collection(self, type_name: str, name: str) -> Any:
        from wandb.automations.scopes import _ArtifactSequenceScope

        assert (type_name, name) == ("model", "relaunch-demo/digits/digits-model")
        return _ArtifactSequenceScope(id="QXJ0aWZhY3RDb2xsZWN0aW9uOjE=", name="digits-model")

    def create_automation(self, automation: Any) -> None:
        self.created.append(automation)


def test_the_wandb_helper_creates_the_declared_automation(capsys: pytest.CaptureFixture[str]) -> None:
    automations = pytest.importorskip("wandb.automations")
    hook = automations.WebhookIntegration(
        id="SW50ZWdyYXRpb246MQ==", name="relaunch", urlEndpoint="https://hook.example"
    )
    api = FakeWandbApi([hook], [])
    args = [
        "create",
        "--entity=relaunch-demo",
        "--project=digits",
        "--name=relaunch-digits-candidate",
        "--event=ADD_ARTIFACT_ALIAS",
        "--collection=digits-model",
        "--alias-regex=^candidate$",
        "--integration=relaunch",
        f"--payload={json.dumps(WANDB_PAYLOAD)}",
    ]
    parsed = wandb_helper._parser().parse_args(args)
    assert parsed.func(api, parsed) == 0
    (created,) = api.created
    event = created.event.model_dump(mode="json")
    assert event["event_type"] == "ADD_ARTIFACT_ALIAS" and event["scope"]["name"] == "digits-model"
    assert json.loads(event["filter"]) == {"$or": [{"$and": [{"alias": {"$regex": "^candidate$"}}]}]}
    assert created.action.integration_id == hook.id and created.action.request_payload == WANDB_PAYLOAD
    for command, expected in (("integration", "https://hook.example\n"), ("describe", None)):
        parsed = wandb_helper._parser().parse_args([command, "--entity=relaunch-demo", "--name=relaunch"])
        capsys.readouterr()
        assert parsed.func(api, parsed) == (0 if expected else 1)
        out = capsys.readouterr()
        assert out.out == expected if expected else "NOT_FOUND" in out.err
