"""`relaunch demo --profile gcp-emulated`: the demo's story on the GCP code path, once, and what it left behind.

Every function the shipped triggers file declares runs with the environment deploy gives it; the store is Firestore
and the bus Pub/Sub (Google's emulators); Cloud Build, Vertex AI, Cloud Storage and GitHub are stand-ins that refuse
what their published API descriptions do not allow, and W&B a stand-in that refuses what no wandb SDK query asks.
The outcomes must be the local demo's, so its scenario tests run again here on this module's `outcome`; the rest
checks what only the GCP path does (and the W&B leg that follows the story).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relaunch.domain.model import RunState
from relaunch.emulated.demo_gcp import GcpTarget, gcp_scenario
from relaunch.emulated.wandb import unknown_fields
from tests import emulators

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def seen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The scenario's outcome and narration, and what the stand-ins and the store held at its end."""
    for kind in ("pubsub", "firestore"):
        emulators.skip_unless_installed(kind)  # skips (or fails where required) with the reason, before any work
    found: dict[str, Any] = {}

    def inspect(target: GcpTarget) -> None:
        cloud = target.cloud
        assert cloud.github and cloud.vertex and cloud.build and cloud.gcs and cloud.wandb
        found["github"] = [(r.method, r.path, r.body) for r in cloud.github.requests]
        found["jobs"] = [dict(job) for job in cloud.vertex.jobs.values()]
        found["builds"] = [dict(build) for build in cloud.build.builds.values()]
        found["deliveries"] = target.app.store.list_deliveries(limit=200)
        found["timelines"] = {run.id: target.app.store.timeline(run.id) for run in target.app.store.list_runs()}
        found["gcs_root"] = cloud.gcs.root
        found["functions"] = [f.name for f in target.deployment.infra.functions]
        found["wandb_calls"] = [(c.operation, c.query) for c in cloud.wandb.calls]
        found["wandb_refused"] = list(cloud.wandb.refused)
        found["wandb_aliases"] = {f"v{a.version}": list(a.aliases) for a in cloud.wandb.artifacts}
        found["files"] = sorted(str(p.relative_to(cloud.gcs.root)) for p in cloud.gcs.root.rglob("*") if p.is_file())

    out = io.StringIO()
    found["outcome"] = gcp_scenario(out, tmp_path_factory.mktemp("gcp-demo"), inspect)
    found["narration"] = out.getvalue()
    yield found


def test_a_good_commit_is_promoted_and_a_worse_one_rejected_on_the_gcp_path(seen: dict[str, Any]) -> None:
    outcome = seen["outcome"]
    assert outcome.promoted.state is RunState.PROMOTED and outcome.promoted.model_version == "v1"
    assert outcome.rejected.state is RunState.REJECTED and "floor" in outcome.rejected.reason
    states = [e.data["to"] for e in seen["timelines"][outcome.promoted.id] if e.kind == "state" and e.data]
    assert states == ["received", "building", "training", "evaluating", "gated", "rolling_out", "promoted"]
    assert outcome.answer["model_version"] == "v1" and outcome.answer["predictions"] == [
        float(t) for t in outcome.truth
    ]


def test_every_declared_function_ran_as_deploy_declares_it(seen: dict[str, Any]) -> None:
    import yaml

    declared = [f["name"] for f in yaml.safe_load((ROOT / "triggers" / "relaunch.yaml").read_text())["functions"]]
    assert seen["functions"] == declared


def test_images_were_built_by_cloud_build_from_the_pushed_commits(seen: dict[str, Any]) -> None:
    outcome = seen["outcome"]
    built = {b["substitutions"]["_SHA"]: b for b in seen["builds"] if b["substitutions"].get("_SHA")}
    for run in (outcome.promoted, outcome.rejected):
        assert built[run.trigger.sha]["status"] == "SUCCESS"
        assert run.image and run.image.endswith(built[run.trigger.sha]["results"]["images"][0]["digest"])


def test_jobs_ran_on_vertex_with_a_base_output_directory_and_no_aip_variable_of_their_own(seen: dict[str, Any]) -> None:
    jobs = seen["jobs"]
    assert len(jobs) == 5 and {j["state"] for j in jobs} == {"JOB_STATE_SUCCEEDED"}  # train + evaluate, twice; W&B's
    trains = [j for j in jobs if j["labels"]["relaunch-step"] == "train"]
    assert len(trains) == 2
    for job in trains:  # Vertex derives AIP_MODEL_DIR from the base; an evaluation writes no model
        assert job["jobSpec"]["baseOutputDirectory"]["outputUriPrefix"].startswith("gs://")
    for job in jobs:
        env = {e["name"] for e in job["jobSpec"]["workerPoolSpecs"][0]["containerSpec"].get("env", [])}
        assert not {name for name in env if name.startswith("AIP_")}  # Vertex sets those, never relaunch
    promoted = seen["outcome"].promoted
    model = f"artifacts/runs/{promoted.id}/model/model.joblib"
    assert any(f.endswith(model) for f in seen["files"]), "train.py wrote the model through the /gcs/ mount"


def test_finished_jobs_reached_the_orchestrator_through_the_vertex_job_sink(seen: dict[str, Any]) -> None:
    """Each job end was published on relaunch-vertex-jobs and woke its run (the reconcile tick is a minute away)."""
    woke = [d for d in seen["deliveries"] if d.source == "vertex"]
    assert len(woke) == 5 and {d.outcome for d in woke} == {"accepted"}


def test_github_received_the_commit_statuses_its_api_allows(seen: dict[str, Any]) -> None:
    """With a token (the shipped triggers file's RELAUNCH_GITHUB_TOKEN) relaunch posts statuses and deployments;
    check runs need a GitHub App, so none is sent."""
    sha = seen["outcome"].promoted.trigger.sha
    statuses = [json.dumps(b) for m, p, b in seen["github"] if m == "POST" and p.endswith(f"/statuses/{sha}")]
    assert any('"relaunch/gate"' in s and '"success"' in s for s in statuses)
    assert any('"relaunch/deploy"' in s and '"success"' in s for s in statuses)
    rejected = seen["outcome"].rejected.trigger.sha
    assert any('"relaunch/gate"' in json.dumps(b) and '"failure"' in json.dumps(b)
               for m, p, b in seen["github"] if m == "POST" and p.endswith(f"/statuses/{rejected}"))  # fmt: skip
    assert [p for m, p, _ in seen["github"] if p.endswith("/check-runs")] == []


def test_the_narration_tells_the_story(seen: dict[str, Any]) -> None:
    text = seen["narration"]
    assert "GCP code path up" in text and "gated -> rejected" in text and "kept serving" in text


def test_a_model_logged_to_wandb_as_candidate_is_evaluated_on_vertex_and_promoted(seen: dict[str, Any]) -> None:
    """Same params as the champion: equal scores pass the gate; the version lands in Cloud Storage, then serves."""
    run = seen["outcome"].wandb
    assert run.trigger.kind == "wandb" and run.trigger.artifact == "relaunch-demo/digits/digits-model:v0"
    assert run.state is RunState.PROMOTED and run.model_version == "v2" and "train" not in run.jobs
    assert run.decision and run.decision.candidate == run.decision.champion  # the champion's own params
    evaluated = [j for j in seen["jobs"] if j["name"] == run.jobs["evaluate"]]
    assert len(evaluated) == 1 and evaluated[0]["state"] == "JOB_STATE_SUCCEEDED"
    assert any(f.endswith(f"artifacts/runs/{run.id}/model/model.joblib") for f in seen["files"])
    assert "production" in seen["wandb_aliases"]["v0"]  # the promote alias moved onto the pinned version
    states = [e.data["to"] for e in seen["timelines"][run.id] if e.kind == "state" and e.data]
    assert states == ["received", "building", "evaluating", "gated", "rolling_out", "promoted"]


def test_wandb_saw_only_what_the_sdk_asks_and_refused_nothing(seen: dict[str, Any]) -> None:
    calls = seen["wandb_calls"]
    assert seen["wandb_refused"] == []
    assert [(op, unknown_fields(query)) for op, query in calls if unknown_fields(query)] == []
    assert {"ArtifactMembershipByName", "FetchArtifactManifest"} <= {op for op, _ in calls}


def test_the_narration_tells_the_wandb_leg(seen: dict[str, Any]) -> None:
    text = seen["narration"]
    assert "expect promoted" in text and "W&B alias production" in text and "serves as v2" in text
