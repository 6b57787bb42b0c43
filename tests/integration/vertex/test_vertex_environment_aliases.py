"""VertexRegistry's environment aliases (`staging`, `production`) as version aliases, at the HTTP boundary."""

from __future__ import annotations

from typing import Any

import pytest

from relaunch.adapters.gcp.vertex_registry import VertexRegistry
from tests.integration.vertex.conftest import PROJECT, REGION
from tests.vertex_server import FakeVertex

SERVING = "us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-3:latest"


@pytest.fixture
def registry(client_kwargs: dict[str, Any]) -> VertexRegistry:
    return VertexRegistry(PROJECT, REGION, serving_image=SERVING, poll_interval_s=0.01, **client_kwargs)


def test_an_environment_alias_moves_between_versions_beside_the_champion(
    vertex: FakeVertex, registry: VertexRegistry
) -> None:
    for run in ("digits-aaaa", "digits-bbbb"):
        registry.register("digits", run, f"gs://relaunch-artifacts/root/runs/{run}/model", {"accuracy": 0.97})
    assert registry.alias("digits", "staging") is None
    registry.set_champion("digits", "v1")
    registry.set_alias("digits", "staging", "v1")
    registry.set_alias("digits", "staging", "v2")
    registry.set_alias("digits", "staging", "v2")  # already there: nothing sent

    named = f"/v1/projects/{vertex.project_number}/locations/{REGION}/models/relaunch-digits"
    merges = [(r.path, r.body) for r in vertex.calls("POST", ":mergeVersionAliases")]
    assert merges == [
        (f"{named}@1:mergeVersionAliases", {"versionAliases": ["champion"]}),
        (f"{named}@1:mergeVersionAliases", {"versionAliases": ["staging"]}),
        (f"{named}@1:mergeVersionAliases", {"versionAliases": ["-staging"]}),
        (f"{named}@2:mergeVersionAliases", {"versionAliases": ["staging"]}),
    ]
    staging = registry.alias("digits", "staging")
    assert staging is not None and (staging.version, staging.run_id) == ("v2", "digits-bbbb")
    assert vertex.models["relaunch-digits"]["1"]["versionAliases"] == ["champion"]
    assert "staging" in vertex.models["relaunch-digits"]["2"]["versionAliases"]  # beside Vertex's own `default`
    with pytest.raises(KeyError, match="no version 'v7'"):
        registry.set_alias("digits", "staging", "v7")
