"""VertexRegistry against the fake Vertex REST API: the real ModelServiceClient (REST transport) on loopback."""

from __future__ import annotations

from typing import Any

import pytest

from relaunch.adapters.gcp.vertex_registry import VertexRegistry, model_id_for
from relaunch.domain.ports import TransientError
from tests.integration.vertex.conftest import PARENT_PATH, PROJECT, REGION, bodies
from tests.vertex_server import FakeVertex, VertexServer

SERVING = "us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-3:latest"
MODEL = f"{PARENT_PATH}/models/relaunch-digits"
UPLOAD = f"{PARENT_PATH}/models:upload"


def artifact(run_id: str) -> str:
    return f"gs://relaunch-artifacts/root/runs/{run_id}/model"


@pytest.fixture
def registry(client_kwargs: dict[str, Any]) -> VertexRegistry:
    return VertexRegistry(PROJECT, REGION, serving_image=SERVING, poll_interval_s=0.01, **client_kwargs)


def test_the_first_version_creates_the_pipelines_model(vertex: FakeVertex, registry: VertexRegistry) -> None:
    version = registry.register("digits", "digits-aaaa", artifact("digits-aaaa"), {"accuracy": 0.97})

    model_name = f"projects/{vertex.project_number}/locations/{REGION}/models/relaunch-digits"
    assert version.version == "v1"
    assert version.resource_name == f"{model_name}@1"
    assert (version.run_id, version.artifact_uri, version.metrics) == (
        "digits-aaaa",
        artifact("digits-aaaa"),
        {"accuracy": 0.97},
    )
    assert bodies(vertex, "POST", UPLOAD) == [
        {
            "modelId": "relaunch-digits",
            "model": {
                "displayName": "relaunch-digits",
                "description": "relaunch pipeline digits",
                "versionDescription": 'relaunch {"metrics": {"accuracy": 0.97}, "run_id": "digits-aaaa"}',
                "artifactUri": artifact("digits-aaaa"),
                "containerSpec": {"imageUri": SERVING},
                "labels": {"relaunch-run-id": "digits-aaaa", "relaunch-pipeline": "digits"},
            },
        }
    ]
    # The upload is a long-running operation, polled (through the API's /ui/ binding) until done.
    polls = [r.path for r in vertex.calls("GET", "/operations/")]
    assert (
        polls == [f"/ui/projects/{vertex.project_number}/locations/{REGION}/models/relaunch-digits/operations/1001"] * 2
    )
    listed = vertex.calls("GET", f"{MODEL}:listVersions")
    assert listed[0].query["filter"] == ['labels.relaunch-run-id="digits-aaaa"']


def test_later_versions_go_under_the_parent_model(vertex: FakeVertex, registry: VertexRegistry) -> None:
    registry.register("digits", "digits-aaaa", artifact("digits-aaaa"), {"accuracy": 0.97})
    second = registry.register("digits", "digits-bbbb", artifact("digits-bbbb"), {"accuracy": 0.98})

    assert second.version == "v2"
    upload = bodies(vertex, "POST", UPLOAD)[1]
    assert upload["parentModel"] == f"projects/{PROJECT}/locations/{REGION}/models/relaunch-digits"
    assert "modelId" not in upload
    assert upload["model"]["labels"]["relaunch-run-id"] == "digits-bbbb"


def test_registering_a_run_again_returns_its_version(
    vertex: FakeVertex, registry: VertexRegistry, client_kwargs: dict[str, Any]
) -> None:
    first = registry.register("digits", "digits-aaaa", artifact("digits-aaaa"), {"accuracy": 0.97})
    again = registry.register("digits", "digits-aaaa", artifact("digits-aaaa"), {"accuracy": 0.97})
    other = VertexRegistry(PROJECT, REGION, serving_image=SERVING, **client_kwargs)

    assert again == first
    assert other.register("digits", "digits-aaaa", artifact("digits-aaaa"), {"accuracy": 0.97}).version == "v1"
    assert len(bodies(vertex, "POST", UPLOAD)) == 1


def test_the_champion_alias_moves_on_promotion(vertex: FakeVertex, registry: VertexRegistry) -> None:
    registry.register("digits", "digits-aaaa", artifact("digits-aaaa"), {"accuracy": 0.97})
    registry.register("digits", "digits-bbbb", artifact("digits-bbbb"), {"accuracy": 0.98})
    assert registry.champion("digits") is None

    registry.set_champion("digits", "v1")
    registry.set_champion("digits", "v2")
    registry.set_champion("digits", "v2")  # already the champion: nothing sent

    named = f"/v1/projects/{vertex.project_number}/locations/{REGION}/models/relaunch-digits"
    merges = [(r.path, r.body) for r in vertex.calls("POST", ":mergeVersionAliases")]
    assert merges == [
        (f"{named}@1:mergeVersionAliases", {"versionAliases": ["champion"]}),
        (f"{named}@1:mergeVersionAliases", {"versionAliases": ["-champion"]}),
        (f"{named}@2:mergeVersionAliases", {"versionAliases": ["champion"]}),
    ]
    champion = registry.champion("digits")
    assert champion is not None and (champion.version, champion.run_id) == ("v2", "digits-bbbb")
    assert champion.metrics == {"accuracy": 0.98}
    assert vertex.calls("GET", f"{MODEL}@champion")
    assert vertex.models["relaunch-digits"]["1"]["versionAliases"] == []


def test_get_and_unknown_versions(vertex: FakeVertex, registry: VertexRegistry) -> None:
    registry.register("digits", "digits-aaaa", artifact("digits-aaaa"), {"accuracy": 0.97})

    got = registry.get("digits", "v1")
    assert got is not None and got.artifact_uri == artifact("digits-aaaa")
    assert vertex.calls("GET", f"{MODEL}@1")
    assert registry.get("digits", "v7") is None
    assert registry.get("digits", "champion") is None  # not a version string: no call can make it one
    assert registry.get("other", "v1") is None
    with pytest.raises(KeyError, match="v7"):
        registry.set_champion("digits", "v7")


def test_upload_errors_map_to_the_ports_errors(vertex: FakeVertex, registry: VertexRegistry) -> None:
    vertex.fail_next("POST", "models:upload", 503, "Service unavailable")
    with pytest.raises(TransientError, match="503"):
        registry.register("digits", "digits-aaaa", artifact("digits-aaaa"), {})
    vertex.fail_next("POST", "models:upload", 400, "Model artifact_uri must contain a model file.")
    with pytest.raises(ValueError, match="must contain a model file") as caught:
        registry.register("digits", "digits-aaaa", artifact("digits-aaaa"), {})
    assert not isinstance(caught.value, TransientError)
    with pytest.raises(ValueError, match="artifact_uri"):
        registry.register("digits", "digits-aaaa", "/tmp/model", {})
    assert vertex.models == {}


def test_an_upload_still_running_at_the_timeout_is_transient(client_kwargs: dict[str, Any]) -> None:
    with VertexServer(FakeVertex(operation_polls=-1)) as slow:
        kwargs = {**client_kwargs, "api_endpoint": slow.url}
        registry = VertexRegistry(
            PROJECT, REGION, serving_image=SERVING, operation_timeout_s=0.3, poll_interval_s=0.05, **kwargs
        )
        with pytest.raises(TransientError, match="not done after 0.3s"):
            registry.register("digits", "digits-aaaa", artifact("digits-aaaa"), {})
        assert len(slow.calls("GET", "/operations/")) >= 2


def test_a_redelivered_registration_while_the_upload_runs_uploads_once(client_kwargs: dict[str, Any]) -> None:
    with VertexServer(FakeVertex(operation_polls=-1)) as slow:
        kwargs = {**client_kwargs, "api_endpoint": slow.url}
        registry = VertexRegistry(
            PROJECT, REGION, serving_image=SERVING, operation_timeout_s=0.2, poll_interval_s=0.05, **kwargs
        )
        for _ in range(2):  # the command, then its redelivery while the upload still runs
            with pytest.raises(TransientError):
                registry.register("digits", "digits-aaaa", artifact("digits-aaaa"), {"accuracy": 0.97})
        assert len(slow.calls("POST", "models:upload")) == 1

        slow.finish_operations()
        version = registry.register("digits", "digits-aaaa", artifact("digits-aaaa"), {"accuracy": 0.97})
        assert version.version == "v1" and len(slow.calls("POST", "models:upload")) == 1


def test_metrics_are_imported_as_a_model_evaluation_of_the_version_once(
    vertex: FakeVertex, registry: VertexRegistry
) -> None:
    metrics = {"accuracy": 0.97, "macro_f1": 0.96}
    version = registry.register("digits", "digits-aaaa", artifact("digits-aaaa"), metrics)
    again = registry.register("digits", "digits-aaaa", artifact("digits-aaaa"), metrics)

    assert again == version
    numbered = f"/v1/projects/{vertex.project_number}/locations/{REGION}/models/relaunch-digits"  # as Vertex names it
    assert bodies(vertex, "POST", f"{numbered}@1/evaluations:import") == [
        {
            "modelEvaluation": {
                "displayName": "relaunch digits-aaaa",
                "metricsSchemaUri": "gs://google-cloud-aiplatform/schema/modelevaluation/classification_metrics_1.0.0.yaml",
                "metrics": {"accuracy": 0.97, "macro_f1": 0.96},
                "metadata": {"relaunch_run_id": "digits-aaaa"},
            }
        }
    ]
    assert [e["metrics"] for e in vertex.evaluations["relaunch-digits@1"]] == [metrics]


def test_model_ids_follow_vertex_rules() -> None:
    assert model_id_for("digits") == "relaunch-digits"
    long = model_id_for("a" * 63)
    assert len(long) == 63 and long != model_id_for("a" * 62 + "b")


def test_a_versions_provenance_rides_in_its_description_and_its_trigger_in_a_label(
    vertex: FakeVertex, registry: VertexRegistry
) -> None:
    meta = {"trigger": "drift", "commit": "a" * 40, "run_id": "digits-aaaa", "same_commit_as": "v1"}
    version = registry.register("digits", "digits-aaaa", artifact("digits-aaaa"), {"accuracy": 0.97}, meta)
    (sent,) = bodies(vertex, "POST", UPLOAD)
    assert sent["model"]["labels"]["relaunch-trigger"] == "drift"
    assert version.metadata == meta and registry.get("digits", "v1") == version
    assert registry.content_digest(artifact("digits-aaaa")) is None  # Vertex: identical models are not told apart
