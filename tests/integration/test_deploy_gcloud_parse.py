"""Every command of the deploy plan, and every probe, as the real gcloud parses it (offline, no account).

The plan is checked against gcloud's own argument parser rather than against what we believe its flags are: a flag
that does not exist (`--filter` on `storage buckets get-iam-policy`) or a resource that does not resolve (a bare
topic name without a default project) is a refusal here. Skipped, saying why, where gcloud is not installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from relaunch.config_files import load_specs
from relaunch.deploy.command import Arg, Capture, Cmd, SourceDigest, Word
from relaunch.deploy.infra import Dashboard, Iap
from relaunch.deploy.infra_file import load_infra
from relaunch.deploy.plan import build_plan
from tests.gcloud_parser import sdk_lib

ROOT = Path(__file__).resolve().parents[2]
PROJECT_NUMBER = "123456789012"  # what every capture stands for: the parser never sees a deploy-time value


def literal(arg: Arg) -> str:
    if isinstance(arg, str):
        return arg
    if isinstance(arg, Word):
        return "".join(literal(part) for part in arg.parts)
    if isinstance(arg, SourceDigest):
        return "0" * 16
    return PROJECT_NUMBER


def commands(cmd: Cmd) -> Iterator[list[str]]:
    """The command and every command nested in its captures (each runs at deploy time too)."""
    yield [literal(a) for a in cmd.argv]
    nested = [a for a in cmd.argv if isinstance(a, Capture)]
    nested += [p for a in cmd.argv if isinstance(a, Word) for p in a.parts if isinstance(p, Capture)]
    nested += [cmd.stdin] if cmd.stdin else []
    for capture in nested:
        yield from commands(capture.cmd)


def plan_commands() -> list[list[str]]:
    """The example's commands, and those of the same file with the dashboard behind IAP (an opt-in)."""
    specs = load_specs(ROOT / "pipelines")
    infra = load_infra(ROOT / "triggers" / "relaunch.yaml", specs)
    iap = Dashboard(iap=Iap(members=["group:ml-team@example.com", "user:ana@example.com", "domain:example.com"]))
    steps = [*build_plan(infra, specs).steps, *build_plan(infra.model_copy(update={"dashboard": iap}), specs).steps]
    found: dict[str, list[str]] = {}
    for step in steps:
        for cmd in (step.describe, step.create, step.update):
            for argv in commands(cmd) if cmd else ():
                if argv[0] == "gcloud":
                    found.setdefault(json.dumps(argv), argv)
    return list(found.values())


def test_every_gcloud_command_of_the_plan_parses() -> None:
    if sdk_lib() is None:
        pytest.skip("gcloud is not installed (the Cloud SDK's lib folder was not found)")
    argvs = plan_commands()
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "gcloud_parser.py")],
        input=json.dumps(argvs),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    verdicts = json.loads(done.stdout)
    refused = [
        f"{' '.join(argv)}\n    {verdict}" for argv, verdict in zip(argvs, verdicts, strict=True) if verdict != "parsed"
    ]
    assert len(argvs) > 100 and refused == [], "\n".join(refused)


def gcloud_prints(fmt: str, resource: object) -> str:
    script = str(ROOT / "tests" / "gcloud_parser.py")
    done = subprocess.run(
        [sys.executable, script, "print", fmt], input=json.dumps(resource), capture_output=True, text=True, check=True
    )
    return done.stdout


def test_the_bucket_policy_probe_prints_the_role_only_when_the_member_holds_it() -> None:
    if sdk_lib() is None:
        pytest.skip("gcloud is not installed (the Cloud SDK's lib folder was not found)")
    probes = [a for a in plan_commands() if a[1:4] == ["storage", "buckets", "get-iam-policy"]]
    fmt = next(a for a in probes[0] if a.startswith("--format="))
    role = fmt.split('role="', 1)[1].split('"', 1)[0]
    member = fmt.split('members="', 1)[1].split('"', 1)[0]
    other = "serviceAccount:someone-else@my-ml-project.iam.gserviceaccount.com"
    holds = {"bindings": [{"role": "roles/viewer", "members": [member]}, {"role": role, "members": [other, member]}]}
    lacks = {"bindings": [{"role": role, "members": [other]}, {"role": "roles/viewer", "members": [member]}]}
    value = fmt.removeprefix("--format=")
    assert gcloud_prints(value, holds).strip() == role  # the runner reads this as "unchanged"
    assert gcloud_prints(value, lacks).strip() == ""  # and this as "absent: add the binding"
