"""The dashboard on GCP as deploy wires it: the reports' link to it (RELAUNCH_PUBLIC_URL, computed unless the triggers
file sets it, and checked once the dashboard is up) and Identity-Aware Proxy in front of it when the file opts in."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from relaunch.config_files import load_specs
from relaunch.deploy import load_infra
from relaunch.deploy.command import Arg, Capture, Cmd, SourceDigest, Word, render
from relaunch.deploy.infra import Infra
from relaunch.deploy.infra_file import InfraError
from relaunch.deploy.plan import Plan, build_plan
from relaunch.deploy.step import Step

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "triggers" / "relaunch.yaml"
SPECS = load_specs(ROOT / "pipelines")
RAW: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
NUMBER = "123456789012"  # what the project-number capture stands for here
URL = f"https://relaunch-dashboard-{NUMBER}.us-central1.run.app"
MEMBERS = ["group:ml-team@example.com", "user:ana@example.com", "domain:example.com", "serviceAccount:ci@p.iam.gsa.com"]


def literal(arg: Arg) -> str:
    """A word with every deploy-time value replaced by what it would print here (the project number)."""
    if isinstance(arg, str):
        return arg
    if isinstance(arg, Word):
        return "".join(literal(part) for part in arg.parts)
    if isinstance(arg, SourceDigest):
        return "0" * 16
    assert isinstance(arg, Capture) and "projectNumber" in render(arg.cmd), render(arg.cmd)
    return NUMBER


def argv(cmd: Cmd | None) -> list[str]:
    assert cmd is not None
    return [literal(a) for a in cmd.argv]


def load(tmp_path: Path, **changes: Any) -> Infra:
    raw = copy.deepcopy(RAW)
    raw.update(changes)
    path = tmp_path / "relaunch.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_infra(path, SPECS)


def plan_of(infra: Infra) -> Plan:
    return build_plan(infra, SPECS)


def step(plan: Plan, step_id: str) -> Step:
    return next(s for s in plan.steps if s.id == step_id)


def env_of(plan: Plan, function: str) -> dict[str, str]:
    deploy = argv(step(plan, f"function {function}").create)
    flag = next(a for a in deploy if a.startswith("--set-env-vars="))
    return dict(item.split("=", 1) for item in flag.removeprefix("--set-env-vars=").split(","))


def ids(plan: Plan) -> list[str]:
    return [s.id for s in plan.steps]


@pytest.mark.parametrize("function", ["relaunch-orchestrator", "relaunch-reconcile", "relaunch-github-webhook"])
def test_functions_that_report_link_runs_to_the_dashboard_s_run_app_url(function: str) -> None:
    plan = plan_of(load_infra(EXAMPLE, SPECS))
    assert env_of(plan, function)["RELAUNCH_PUBLIC_URL"] == URL


def test_the_dashboard_s_url_is_checked_once_it_is_deployed_and_a_mismatch_stops_the_deploy() -> None:
    plan = plan_of(load_infra(EXAMPLE, SPECS))
    check = step(plan, "dashboard relaunch-dashboard: URL")
    assert ids(plan).index(check.id) > ids(plan).index("function relaunch-dashboard")
    assert argv(check.describe)[:5] == ["gcloud", "run", "services", "describe", "relaunch-dashboard"]
    assert "--format=value(status.url)" in argv(check.describe) and "--region=us-central1" in argv(check.describe)
    assert check.expect is not None and literal(check.expect) == URL
    assert check.create is None and check.update is None  # a check: the deploy stops, saying what to set
    assert "RELAUNCH_PUBLIC_URL" in check.missing and "serviceConfig.uri" in check.missing


def test_a_public_url_the_triggers_file_sets_wins_and_is_not_checked(tmp_path: Path) -> None:
    infra = load(tmp_path, env={**RAW["env"], "RELAUNCH_PUBLIC_URL": "https://relaunch.example.com"})
    plan = plan_of(infra)
    assert env_of(plan, "relaunch-orchestrator")["RELAUNCH_PUBLIC_URL"] == "https://relaunch.example.com"
    assert not any(i.startswith("dashboard ") for i in ids(plan))


def test_without_a_dashboard_function_no_public_url_is_set(tmp_path: Path) -> None:
    raw_functions = [f for f in RAW["functions"] if f["entry_point"] != "dashboard"]
    plan = plan_of(load(tmp_path, functions=raw_functions))
    assert "RELAUNCH_PUBLIC_URL" not in env_of(plan, "relaunch-orchestrator")
    assert not any(i.startswith("dashboard ") for i in ids(plan))


def test_without_iap_the_dashboard_stays_public_behind_its_token_and_no_iap_step_is_planned() -> None:
    plan = plan_of(load_infra(EXAMPLE, SPECS))
    deploy = argv(step(plan, "function relaunch-dashboard").create)
    assert "--allow-unauthenticated" in deploy
    assert "RELAUNCH_IAP_AUDIENCE" not in env_of(plan, "relaunch-dashboard")  # no IAP header is ever read
    assert not any("iap" in render(c) for s in plan.steps for c in (s.describe, s.create, s.update) if c)


def test_iap_on_wires_the_api_the_agent_the_service_and_each_member(tmp_path: Path) -> None:
    plan = plan_of(load(tmp_path, dashboard={"iap": {"members": MEMBERS}}))
    assert "api iap.googleapis.com" in ids(plan)
    assert "--no-allow-unauthenticated" in argv(step(plan, "function relaunch-dashboard").create)
    audience = f"/projects/{NUMBER}/locations/us-central1/services/relaunch-dashboard"  # what IAP signs for
    assert env_of(plan, "relaunch-dashboard")["RELAUNCH_IAP_AUDIENCE"] == audience
    assert "RELAUNCH_IAP_AUDIENCE" not in env_of(plan, "relaunch-orchestrator")
    agent = f"service-{NUMBER}@gcp-sa-iap.iam.gserviceaccount.com"

    made = step(plan, "dashboard relaunch-dashboard: IAP service agent")
    assert argv(made.describe)[:6] == [
        "gcloud",
        "beta",
        "services",
        "identity",
        "create",
        "--service=iap.googleapis.com",
    ]
    assert made.expect is not None and literal(made.expect) == agent

    on = step(plan, "dashboard relaunch-dashboard: IAP")
    assert "--format=value(metadata.annotations['run.googleapis.com/iap-enabled'])" in argv(on.describe)
    assert on.expect == "true" and on.create is None
    assert argv(on.update)[:7] == [
        "gcloud",
        "beta",
        "run",
        "services",
        "update",
        "relaunch-dashboard",
        "--region=us-central1",
    ]
    assert "--iap" in argv(on.update)

    invoker = step(plan, "iam function relaunch-dashboard: roles/run.invoker for IAP service agent")
    assert f"--member=serviceAccount:{agent}" in argv(invoker.update)

    where = ["--resource-type=cloud-run", "--service=relaunch-dashboard", "--region=us-central1"]
    for member in MEMBERS:
        grant = step(plan, f"iam IAP on function relaunch-dashboard: roles/iap.httpsResourceAccessor for {member}")
        add = argv(grant.update)
        assert add[:5] == ["gcloud", "beta", "iap", "web", "add-iam-policy-binding"] and add[5:8] == where
        assert f"--member={member}" in add and "--role=roles/iap.httpsResourceAccessor" in add
        assert argv(grant.describe)[:5] == ["gcloud", "beta", "iap", "web", "get-iam-policy"]
    order = ids(plan)
    first = order.index("function relaunch-dashboard")
    assert first < order.index(made.id) < order.index(on.id) < order.index(invoker.id)


def test_an_iap_api_already_declared_is_enabled_once(tmp_path: Path) -> None:
    plan = plan_of(load(tmp_path, apis=[*RAW["apis"], "iap.googleapis.com"], dashboard={"iap": {"members": MEMBERS}}))
    assert ids(plan).count("api iap.googleapis.com") == 1


@pytest.mark.parametrize(
    ("member", "why"),
    [
        ("allUsers", "would let anyone past IAP"),
        ("allAuthenticatedUsers", "would let anyone past IAP"),
        ("ana@example.com", "user:EMAIL, group:EMAIL, serviceAccount:EMAIL or domain:DOMAIN"),
        ("user:ana", "user:EMAIL"),
        ("domain:localhost", "domain:DOMAIN"),
        ("user:ana@example.com --role=roles/owner", "user:EMAIL"),
        ("group:ml@example.com\n", "user:EMAIL"),
        ("owner:ana@example.com", "user:EMAIL"),
    ],
)
def test_an_iap_member_not_of_the_documented_forms_is_refused_naming_the_field(
    tmp_path: Path, member: str, why: str
) -> None:
    with pytest.raises(InfraError) as failed:
        load(tmp_path, dashboard={"iap": {"members": ["group:ok@example.com", member]}})
    message = str(failed.value)
    assert "dashboard.iap.members.1: " in message and why in message and "\n" not in message.rstrip("\n")


@pytest.mark.parametrize(
    ("change", "where", "why"),
    [
        ({"dashboard": {"iap": {"members": []}}}, "dashboard.iap.members", "at least 1"),
        (
            {"dashboard": {"iap": {"members": ["user:a@example.com", "user:a@example.com"]}}},
            "dashboard.iap.members",
            "declared 2 times",
        ),  # fmt: skip
        ({"dashboard": {"iap": {"members": MEMBERS}, "oops": 1}}, "dashboard.oops", "Extra inputs"),
        (
            {
                "dashboard": {"iap": {"members": MEMBERS}},
                "functions": [f for f in RAW["functions"] if f["entry_point"] != "dashboard"],
            },
            "dashboard.iap",
            "no function with entry point dashboard",
        ),  # fmt: skip
        (
            {"functions": [*RAW["functions"], {**RAW["functions"][-1], "name": "relaunch-dashboard-2"}]},
            "functions",
            "one dashboard function at most",
        ),  # fmt: skip
    ],
)
def test_a_dashboard_declaration_that_cannot_work_is_refused(
    tmp_path: Path, change: dict[str, Any], where: str, why: str
) -> None:
    with pytest.raises(InfraError) as failed:
        load(tmp_path, **change)
    assert f"{where}: " in str(failed.value) and why in str(failed.value), str(failed.value)
