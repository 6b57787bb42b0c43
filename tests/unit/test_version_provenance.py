"""What a registered version says about itself, and a model identical to the champion's is never registered again.

The rule (README, "Model versions"): a retrain of an unchanged commit is still registered (its data may have changed),
with its trigger, commit, run, time and content digest in the version's metadata, and "same commit as vN" when it
repeats the champion's commit; a model whose files are identical to the champion's ends `rejected`, unregistered.
"""

from __future__ import annotations

from relaunch.domain.model import ModelVersion, RunState, TimelineEntry
from relaunch.domain.provenance import built_environment, version_metadata
from tests.unit.test_orchestrator import GOOD, World

S = RunState
BETTER = {"accuracy": 0.98, "macro_f1": 0.98}


def _retrain(w: World, n: int, digest: str, **trigger: object) -> object:
    run = w.new_run(n, **trigger)
    w.start(run)
    w.finish(run, "train")
    w.registry.digests[f"/art/runs/{run.id}/model"] = digest
    return w.evaluate(run, BETTER, GOOD)


def test_a_model_identical_to_the_champion_is_not_registered_and_the_run_says_why() -> None:
    w = World()
    w.registry.digests["/art/runs/digits-1/model"] = "d" * 64
    w.promote(1)
    done = _retrain(w, 2, "d" * 64, kind="schedule", sha="0" * 39 + "1")
    assert done.state is S.REJECTED  # type: ignore[attr-defined]
    assert done.reason == "identical to champion v1 (same model files): nothing to roll out"  # type: ignore[attr-defined]
    assert [v.version for v in w.registry.versions["digits"]] == ["v1"] and w.endpoint.deployed["digits"] == {"v1": 100}
    deploy = [n for n in w.notifier.sent if n.run_id == "digits-2" and n.stage == "deploy"]
    assert [(n.state, n.description) for n in deploy] == [
        ("success", "Not rolled out: identical to champion v1, which serves digits")
    ]


def test_a_retrain_of_the_same_commit_is_registered_with_what_is_new() -> None:
    w = World()
    w.registry.digests["/art/runs/digits-1/model"] = "d" * 64
    w.promote(1)
    done = _retrain(w, 2, "e" * 64, kind="drift", sha="0" * 39 + "1", reason="critical drift")
    assert done.state is S.PROMOTED and done.model_version == "v2"  # type: ignore[attr-defined]
    v1, v2 = w.registry.versions["digits"]
    assert v1.metadata["content_digest"] == "d" * 64 and v1.metadata["trigger"] == "push"
    assert v2.metadata["trigger"] == "drift" and v2.metadata["commit"] == "0" * 39 + "1"
    assert v2.metadata["run_id"] == "digits-2" and v2.metadata["content_digest"] == "e" * 64
    assert v2.metadata["same_commit_as"] == "v1" and v2.metadata["reason"] == "critical drift"
    assert v2.metadata["registered_at"].endswith("Z")
    notes = [e.message for e in w.store.timeline("digits-2") if e.kind == "info"]
    assert any(m.startswith("same commit as champion v1") for m in notes)


def test_metadata_of_a_new_commit_names_no_earlier_version_and_skips_what_is_unknown() -> None:
    w = World()
    run = w.new_run(3, kind="wandb", sha=None, ref="refs/heads/main", artifact="acme/digits/model:v2")
    champion = ModelVersion(pipeline="digits", version="v1", artifact_uri="/r", run_id="x", metadata={"commit": "a"})
    meta = version_metadata(run, champion, at=0.0)
    assert meta == {
        "run_id": "digits-3",
        "trigger": "wandb",
        "registered_at": "1970-01-01T00:00:00Z",
        "ref": "refs/heads/main",
        "artifact": "acme/digits/model:v2",
    }


def test_the_python_environment_the_build_made_is_in_the_version_metadata() -> None:
    """The local endpoint serves a version with the environment it was trained in: the build's timeline names it."""
    w = World()
    run = w.new_run(4)
    w.start(run)
    w.store.append_timeline(run.id, TimelineEntry(kind="info", message="env", data={"environment": "0" * 16}))
    w.store.append_timeline(run.id, TimelineEntry(kind="info", message="env", data={"environment": "ab12" * 4}))
    w.finish(run, "train")
    w.evaluate(run, BETTER, GOOD)
    (v1,) = w.registry.versions["digits"]
    assert v1.metadata["python_environment"] == "ab12" * 4  # the latest build's (a retried build says it again)


def test_no_environment_or_a_malformed_one_is_left_out() -> None:
    entries = [TimelineEntry(kind="info", message="environment: none declared", data={"environment": None})]
    assert built_environment(entries) is None
    assert built_environment([TimelineEntry(kind="info", message="x", data={"environment": "../../etc"})]) is None
    assert built_environment([]) is None
    run = World().new_run(5)
    assert "python_environment" not in version_metadata(run, None, at=0.0, python_environment=None)
