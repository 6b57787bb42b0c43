"""The deploy check of a Firestore index, through the installed gcloud's own filter and format engine (offline).

`gcloud firestore indexes composite list` lists every index of the database and filters on our side, so the step's
--filter must keep exactly the index the step creates, as Firestore lists it (`__name__` appended in the direction
of the last field), and no neighbour; its --format must print what the step expects. Skipped where gcloud is not
installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from relaunch.config_files import load_specs
from relaunch.deploy.infra_file import load_infra
from relaunch.deploy.plan import build_plan
from relaunch.deploy.step import Step
from tests.gcloud_parser import sdk_lib

ROOT = Path(__file__).resolve().parents[2]

# Given the SDK's lib folder, a filter and a format: which resources (JSON on stdin) the filter keeps, and what the
# format prints for them, evaluated as a gcloud list command does (every transform available to both).
EVALUATE = """
import io, json, sys
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/third_party"]
from googlecloudsdk.core.resource import resource_filter, resource_printer, resource_projection_spec, resource_transform
defaults = resource_projection_spec.ProjectionSpec(symbols=resource_transform.GetTransforms())
keep = resource_filter.Compile(sys.argv[2], defaults=defaults)
kept = [r for r in json.load(sys.stdin) if keep.Evaluate(r)]
out = io.StringIO()
resource_printer.Print(kept, sys.argv[3], out=out)
print(json.dumps({"kept": [r["name"] for r in kept], "printed": out.getvalue()}))
"""


def index_steps() -> list[Step]:
    specs = load_specs(ROOT / "pipelines")
    plan = build_plan(load_infra(ROOT / "triggers" / "relaunch.yaml", specs), specs)
    return [s for s in plan.steps if s.create and s.create.argv[1:5] == ("firestore", "indexes", "composite", "create")]


def listed(group: str, fields: list[tuple[str, str]], scope: str = "COLLECTION", tag: str = "") -> dict[str, Any]:
    """An index as the Admin API lists it."""
    name = f"projects/my-ml-project/databases/(default)/collectionGroups/{group}/indexes/CICAgO{tag}"
    return {
        "name": name,
        "queryScope": scope,
        "state": "READY",
        "fields": [{"fieldPath": path, "order": order} for path, order in fields],
    }


def test_the_index_check_keeps_exactly_the_created_index_as_firestore_lists_it() -> None:
    lib = sdk_lib()
    if lib is None:
        pytest.skip("gcloud is not installed (the Cloud SDK's lib folder was not found)")
    [step] = [s for s in index_steps() if "--collection-group=relaunch_runs" in s.create.argv]  # type: ignore[union-attr]
    assert step.create is not None and step.update == step.create  # absent: the check prints nothing, create runs
    argv = [a for a in step.describe.argv if isinstance(a, str)]
    flt = next(a.removeprefix("--filter=") for a in argv if a.startswith("--filter="))
    fmt = next(a.removeprefix("--format=") for a in argv if a.startswith("--format="))
    asc, desc = "ASCENDING", "DESCENDING"
    ours = [("pipeline", asc), ("created_at", desc), ("__name__", desc)]
    resources = [
        listed("relaunch_runs", [("pipeline", asc), ("created_at", asc), ("__name__", asc)], tag="1"),
        listed("relaunch_runs", [("pipeline", asc), ("created_at", desc), ("state", asc), ("__name__", asc)], tag="2"),
        listed("relaunch_runs", ours, scope="COLLECTION_GROUP", tag="3"),
        listed("relaunch_runs_old", ours, tag="4"),
        listed("relaunch_runs", ours, tag="5"),
    ]
    done = subprocess.run(
        [sys.executable, "-c", EVALUATE, str(lib), flt, fmt],
        input=json.dumps(resources),
        capture_output=True,
        text=True,
        check=True,
    )
    answer = json.loads(done.stdout)
    assert answer["kept"] == [resources[-1]["name"]]
    assert answer["printed"].strip() == step.expect  # the runner reads this as "unchanged"
