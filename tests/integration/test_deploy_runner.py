"""`relaunch deploy` against fake `gcloud`, `gh` and W&B executables first on PATH
(tests/integration/fake_deploy_cli.py): real subprocesses, real argv, a state file standing in for the project."""

from __future__ import annotations

import io
import json
import marshal
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from relaunch import cli
from relaunch.config_files import load_specs
from relaunch.deploy import load_infra, plan_for
from relaunch.deploy.dryrun import render_plan
from relaunch.deploy.infra import Dashboard, Iap
from relaunch.deploy.plan import Plan, build_plan
from relaunch.deploy.runner import Action, DeployError, SubprocessShell, run_plan

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "triggers" / "relaunch.yaml"
PIPELINES = ROOT / "pipelines"
FAKE = Path(__file__).with_name("fake_deploy_cli.py")
SECRETS = {
    "relaunch-github-webhook-secret": "gh-hook-secret-5f1c9a",
    "relaunch-wandb-webhook-token": "wandb-hook-token-77aa",
    "relaunch-github-token": "github-token-0b0b0b",
    "relaunch-slack-webhook-url": "slack-url-3c3c3c",
    "relaunch-wandb-api-key": "wandb-api-key-9d9d9d",
    "relaunch-dashboard-token": "dashboard-token-4e4e4e",
}
WANDB_HOOK = "https://relaunch-wandb-webhook-abc123-uc.a.run.app"
NUMBER = "123456789012"  # the fake project's number
ACCESSOR = "roles/iap.httpsResourceAccessor"
SOME = {"relaunch-github-webhook", "relaunch-wandb-webhook", "relaunch-orchestrator"}  # enough for most tests


class Cloud:
    """The fake project: its state file, and the bin folder that puts the fakes first on PATH."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.state_path = root / "state.json"
        bin_dir = root / "bin"
        bin_dir.mkdir()
        launcher = f"#!{sys.executable} -SE\nimport sys\nsys.path.insert(0, {str(FAKE.parent)!r})\n"
        launcher += "import fake_deploy_cli\nsys.exit(fake_deploy_cli.main())\n"
        for name in ("gcloud", "gh", "python3"):
            (bin_dir / name).write_text(launcher)
            (bin_dir / name).chmod(0o755)
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("FAKE_CLOUD_STATE", str(self.state_path))
        monkeypatch.setenv("FAKE_REAL_PYTHON", sys.executable)
        self.write(
            {
                "project": "my-ml-project",
                "apis": [],
                "secrets": dict(SECRETS),
                "calls": [],
                "wandb_integrations": {"relaunch-demo/relaunch": WANDB_HOOK},
            }
        )

    def read(self) -> dict[str, Any]:
        return marshal.loads(self.state_path.read_bytes())  # type: ignore[no-any-return]

    def write(self, state: dict[str, Any]) -> None:
        self.state_path.write_bytes(marshal.dumps(state))

    def update(self, **changes: Any) -> None:
        self.write({**self.read(), **changes})

    def calls(self) -> list[dict[str, Any]]:
        return self.read()["calls"]


@pytest.fixture
def cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cloud:
    return Cloud(tmp_path, monkeypatch)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "functions"
    folder.mkdir()
    (folder / "main.py").write_text("from relaunch.functions.main import *  # noqa\n")
    (folder / "requirements.txt").write_text("relaunch[gcp,wandb,github]==0.1.0\n")
    return folder


def example_plan(
    source: Path, *, apis: int | None = None, functions: set[str] | None = None, iap: list[str] | None = None
) -> Plan:
    """The example's plan with its source in a scratch folder; to save time, only its first `apis` APIs and the
    named `functions` (with their triggers); `iap`: the dashboard behind IAP for these members."""
    specs = load_specs(PIPELINES)
    infra = load_infra(EXAMPLE, specs)
    kept = [f for f in infra.functions if functions is None or f.name in functions]
    triggers = [t for t in infra.triggers if t.function in {f.name for f in kept}]
    changes: dict[str, object] = {"source": str(source), "apis": infra.apis[:apis], "functions": kept}
    changes["triggers"] = triggers
    changes |= {"dashboard": Dashboard(iap=Iap(members=iap))} if iap else {}
    return build_plan(infra.model_copy(update=changes), specs)


def deploy(plan: Plan) -> tuple[list[tuple[str, Action]], list[str]]:
    lines: list[str] = []
    report = run_plan(plan, SubprocessShell(timeout_s=60), echo=lines.append)
    return report.actions, lines


def test_first_deploy_creates_everything_and_a_second_only_describes(cloud: Cloud, source: Path) -> None:
    plan = example_plan(source, apis=2)  # every function and resource of the example; 2 of its 15 APIs save time
    actions, lines = deploy(plan)
    assert [step for step, _ in actions] == [s.id for s in plan.steps]
    preconditions = [s.id for s in plan.steps if s.create is None and s.update is None]  # secrets, W&B integration
    assert [step for step, a in actions if a == "unchanged"] == preconditions
    assert [step for step, a in actions if a == "updated"] == ["trigger relaunch-orchestrator: subscription policy"]
    state = cloud.read()
    assert sorted(state["functions"]) == sorted(
        f"relaunch-{n}"
        for n in (
            "github-webhook",
            "wandb-webhook",
            "orchestrator",
            "reconcile",
            "drift-alert",
            "schedule-tick",
            "build-status",
            "vertex-job",
            "dashboard",
        )
    )
    orchestrator_sub = next(s for n, s in state["subscriptions"].items() if "orchestrator" in n)
    assert orchestrator_sub["deadLetterPolicy"] == {
        "deadLetterTopic": "projects/my-ml-project/topics/relaunch-commands-dead-letter",
        "maxDeliveryAttempts": 10,
    }
    assert state["jobs"]["relaunch-digits-nightly"]["pubsubTarget"]["attributes"]["pipeline"] == "digits"
    hook = state["hooks"]["relaunch-demo/digits"]
    assert hook == [
        {
            "url": "https://relaunch-github-webhook-abc123-uc.a.run.app",
            "secret": SECRETS["relaunch-github-webhook-secret"],
            "events": ["push", "pull_request"],
        }
    ]
    assert state["wandb_automations"]["relaunch-demo/relaunch-digits-candidate"]["alias-regex"] == "^candidate$"
    assert set(state["wandb_keys"]) == {SECRETS["relaunch-wandb-api-key"]}  # through the environment only
    first_calls = len(cloud.calls())

    again, _ = deploy(plan)
    assert {a for _, a in again} == {"unchanged"}
    second = cloud.calls()[first_calls:]
    assert second and not [c for c in second if c["changed"]]
    _assert_no_secret_in(lines, json.dumps(cloud.calls()))


def test_the_dashboard_behind_iap_is_wired_once_then_only_checked_and_a_moved_url_stops_the_deploy(
    cloud: Cloud, source: Path
) -> None:
    members = ["group:ml-team@example.com", "domain:example.com"]
    plan = example_plan(source, apis=0, functions={*SOME, "relaunch-dashboard"}, iap=members)
    actions, _ = deploy(plan)
    section = {s.id for s in plan.steps if s.section == "dashboard"}
    wired = [(step, a) for step, a in actions if step in section]
    agent = f"serviceAccount:service-{NUMBER}@gcp-sa-iap.iam.gserviceaccount.com"
    assert wired == [
        ("dashboard relaunch-dashboard: URL", "unchanged"),  # Cloud Run answers at the URL the reports link to
        ("dashboard relaunch-dashboard: IAP service agent", "unchanged"),
        ("dashboard relaunch-dashboard: IAP", "created"),
        ("iam function relaunch-dashboard: roles/run.invoker for IAP service agent", "created"),
        *(
            (f"iam IAP on function relaunch-dashboard: roles/iap.httpsResourceAccessor for {m}", "created")
            for m in members
        ),
    ]
    state = cloud.read()
    assert "iap.googleapis.com" in state["apis"]
    assert state["run_annotations"]["relaunch-dashboard"] == {"run.googleapis.com/iap-enabled": "true"}
    assert state["policies"]["run services relaunch-dashboard"] == [["roles/run.invoker", agent, None]]
    accessors = [[ACCESSOR, m, None] for m in members]
    assert state["policies"]["beta iap web relaunch-dashboard"] == accessors
    dashboard = state["functions"]["relaunch-dashboard"]["flags"]
    assert "no-allow-unauthenticated" in dashboard and "allow-unauthenticated" not in dashboard
    audience = f"RELAUNCH_IAP_AUDIENCE=/projects/{NUMBER}/locations/us-central1/services/relaunch-dashboard"
    assert audience in dashboard["set-env-vars"].split(",")  # what the dashboard checks IAP's signed header for
    url = f"https://relaunch-dashboard-{NUMBER}.us-central1.run.app"
    orchestrator = state["functions"]["relaunch-orchestrator"]["flags"]["set-env-vars"]
    assert f"RELAUNCH_PUBLIC_URL={url}" in orchestrator.split(",")

    again, _ = deploy(plan)
    assert {a for _, a in again} == {"unchanged"}

    cloud.update(run_urls={"relaunch-dashboard": "https://relaunch-dashboard-q7x2-uc.a.run.app"})
    with pytest.raises(DeployError) as failed:
        deploy(plan)
    message = str(failed.value)
    assert message.startswith("dashboard relaunch-dashboard: URL: ") and "set RELAUNCH_PUBLIC_URL" in message


def test_a_changed_source_redeploys_the_functions_and_nothing_else(cloud: Cloud, source: Path) -> None:
    plan = example_plan(source, apis=1, functions=SOME)
    deploy(plan)
    (source / "requirements.txt").write_text("relaunch[gcp,wandb,github]==0.1.1\n")
    actions, _ = deploy(plan)
    updated = [step for step, action in actions if action != "unchanged"]
    assert updated == [s.id for s in plan.steps if s.section == "functions" and s.id.startswith("function ")]


def test_a_missing_secret_stops_the_deploy_before_anything_that_needs_it(cloud: Cloud, source: Path) -> None:
    cloud.update(secrets={k: v for k, v in SECRETS.items() if k != "relaunch-slack-webhook-url"})
    with pytest.raises(DeployError) as failed:
        deploy(example_plan(source, apis=1))
    message = str(failed.value)
    assert message.startswith("secret relaunch-slack-webhook-url: ")
    assert (
        "deploy never creates secret values" in message
        and "gcloud secrets create relaunch-slack-webhook-url" in message
    )
    calls = cloud.calls()
    failing = max(i for i, c in enumerate(calls) if "--secret=relaunch-slack-webhook-url" in c["argv"])
    assert calls[failing + 1 :] == []  # nothing ran after the failed check
    state = cloud.read()
    assert "service_accounts" in state and "topics" not in state and "functions" not in state


def test_a_failing_create_stops_with_the_resource_and_gcloud_s_error(cloud: Cloud, source: Path) -> None:
    cloud.update(
        fail={"when": "pubsub topics create relaunch-drift", "error": "PERMISSION_DENIED: pubsub.topics.create"}
    )
    with pytest.raises(DeployError) as failed:
        deploy(example_plan(source, apis=1))
    assert (
        str(failed.value)
        == "topic relaunch-drift: create failed (exit 1): ERROR: PERMISSION_DENIED: pubsub.topics.create"
    )
    topics = cloud.read()["topics"]
    assert "relaunch-commands" in topics and "relaunch-schedule" not in topics


def test_a_failing_describe_that_is_not_a_not_found_creates_nothing(cloud: Cloud, source: Path) -> None:
    cloud.update(fail={"when": "iam service-accounts describe", "error": "PERMISSION_DENIED: iam.serviceAccounts.get"})
    with pytest.raises(
        DeployError, match=r"^service account relaunch-ingest: cannot check it \(exit 1\): .*PERMISSION_DENIED"
    ):
        deploy(example_plan(source, apis=1))
    assert "service_accounts" not in cloud.read()


def test_a_secret_echoed_by_a_failing_command_is_hidden(cloud: Cloud, source: Path) -> None:
    cloud.update(
        fail={
            "when": "gh api repos/relaunch-demo/digits/hooks --method=POST",
            "error": "bad request:",
            "echo_stdin": True,
        }
    )
    with pytest.raises(DeployError) as failed:
        deploy(example_plan(source, apis=1, functions=SOME))
    assert str(failed.value).startswith(
        "github webhook relaunch-demo/digits: create failed (exit 1): ERROR: bad request: ***"
    )
    assert SECRETS["relaunch-github-webhook-secret"] not in str(failed.value)


def test_a_missing_wandb_integration_stops_with_the_manual_instructions(cloud: Cloud, source: Path) -> None:
    cloud.update(wandb_integrations={})
    with pytest.raises(DeployError) as failed:
        deploy(example_plan(source, apis=1, functions=SOME))
    message = str(failed.value)
    assert message.startswith("wandb integration relaunch-demo/relaunch: MANUAL (W&B has no API for it)")
    assert "relaunch-wandb-webhook-token" in message and "gcloud functions describe relaunch-wandb-webhook" in message
    assert "wandb_automations" not in cloud.read()


def test_the_cli_deploys_and_reports(
    cloud: Cloud, source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = yaml.safe_load(EXAMPLE.read_text())
    triggers = tmp_path / "triggers.yaml"
    triggers.write_text(yaml.safe_dump({**raw, "source": str(source), "apis": raw["apis"][:1]}))
    assert plan_for(triggers, PIPELINES).steps  # the file is valid
    unwatched = tmp_path / "pipelines"  # the example pipeline without its source.wandb
    unwatched.mkdir()
    spec = yaml.safe_load((PIPELINES / "digits.yaml").read_text())
    del spec["source"]["wandb"]
    (unwatched / "digits.yaml").write_text(yaml.safe_dump(spec))
    assert cli.main(["deploy", "--file", str(triggers), "--pipelines-dir", str(unwatched)]) == 0
    out = capsys.readouterr()
    assert "+ topic relaunch-commands" in out.out and "+ function relaunch-orchestrator" in out.out
    assert out.out.rstrip().splitlines()[-1].startswith("relaunch deploy: ")
    assert "warning: W&B automation relaunch-digits-candidate" in out.err  # its events would all be ignored
    _assert_no_secret_in(out.out.splitlines(), out.err)
    cloud.update(secrets={})
    cloud.write({**cloud.read(), "functions": {}})  # a project missing its secrets and functions
    assert cli.main(["deploy", "--file", str(triggers), "--pipelines-dir", str(PIPELINES)]) == 1
    assert "relaunch deploy: stopped at secret relaunch-github-webhook-secret: " in capsys.readouterr().err


def _assert_no_secret_in(lines: list[str], *texts: str) -> None:
    everything = "\n".join([*lines, *texts])
    for value in SECRETS.values():
        assert value not in everything


def test_subprocess_shell_reports_a_missing_program() -> None:
    result = SubprocessShell().run(["relaunch-no-such-program-xyz"])
    assert result.code == 127 and "command not found" in result.stderr


def test_subprocess_shell_passes_stdin_and_environment() -> None:
    code = "import os, sys; print(os.environ['X_DEPLOY'] + sys.stdin.read())"
    result = SubprocessShell().run([sys.executable, "-c", code], env={"X_DEPLOY": "a"}, stdin="b")
    assert (result.code, result.stdout) == (0, "ab\n")


def test_deploy_text_io(cloud: Cloud, source: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    from relaunch.deploy import deploy as run

    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["functions"][0]["entry_point"] = "nope"
    bad = source.parent / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    assert run(bad, dry_run=False, pipelines_dir=PIPELINES, stdout=out, stderr=err) == 2
    assert "functions[0].entry_point: 'nope' is not one of" in err.getvalue() and out.getvalue() == ""
    assert cloud.calls() == []  # an invalid file touches nothing


def test_the_dry_run_pasted_into_bash_builds_what_the_runner_builds(
    cloud: Cloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the plan's source is the relative folder `functions`, as in the example
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "main.py").write_text("from relaunch.functions.main import *  # noqa\n")
    plan = example_plan(Path("functions"), apis=1, functions=SOME)
    empty = cloud.read()
    script = render_plan(plan, "triggers/relaunch.yaml")
    done = subprocess.run(["bash", "-e", "-o", "pipefail"], input=script, text=True, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    by_script = cloud.read()
    cloud.write(empty)
    deploy(plan)
    by_runner = cloud.read()
    for key in ("calls", "wandb_keys"):
        by_script.pop(key), by_runner.pop(key)
    assert by_script == by_runner
