"""The local endpoint server and its HTTP client, serving real models trained by examples/digits."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sklearn.datasets import load_digits

from relaunch.adapters.local.endpoint import HttpEndpoint
from relaunch.adapters.local.endpoint_server import EndpointServer
from relaunch.pipelines.model import ModelVersion
from relaunch.ports import TransientError

TRAIN = Path(__file__).resolve().parents[2] / "examples" / "digits" / "train.py"


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """One digits model trained by the example, copied to two artifact directories (v1, v2)."""
    root = tmp_path_factory.mktemp("models")
    env = {**os.environ, "AIP_MODEL_DIR": str(root / "v1"), "RELAUNCH_RUN_ID": "run-1", "PYTHONDONTWRITEBYTECODE": "1"}
    subprocess.run([sys.executable, str(TRAIN)], env=env, check=True, capture_output=True, timeout=120)
    shutil.copytree(root / "v1", root / "v2")
    return str(root / "v1"), str(root / "v2")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EndpointServer]:
    running = EndpointServer(tmp_path / "endpoints.json", seed=7)
    running.start()
    yield running
    running.stop()


def version(name: str, uri: str) -> ModelVersion:
    return ModelVersion(pipeline="digits", version=name, artifact_uri=uri, run_id=f"run-{name}")


def digits(n: int) -> tuple[list[list[float]], list[int]]:
    features, labels = load_digits(return_X_y=True)
    return features[:n].tolist(), labels[:n].tolist()


def test_deploy_split_undeploy(server: EndpointServer, model_dirs: tuple[str, str]) -> None:
    client = HttpEndpoint(server.url)
    assert client.traffic("digits") == {}
    client.deploy("digits", version("v1", model_dirs[0]))
    client.deploy("digits", version("v1", model_dirs[0]))
    assert client.traffic("digits") == {"v1": 100}
    client.deploy("digits", version("v2", model_dirs[1]))
    assert client.traffic("digits") == {"v1": 100, "v2": 0}

    client.set_traffic("digits", {"v1": 90, "v2": 10})
    assert client.traffic("digits") == {"v1": 90, "v2": 10}
    with pytest.raises(ValueError, match="still has 10%"):
        client.undeploy("digits", "v2")
    client.set_traffic("digits", {"v1": 100})
    client.undeploy("digits", "v2")
    client.undeploy("digits", "v2")
    described = client.describe("digits")
    assert [d["version"] for d in described["deployed"]] == ["v1"] and described["split"] == {"v1": 100}
    with pytest.raises(ValueError, match="already deployed"):
        client.deploy("digits", version("v1", model_dirs[1]))


def test_predict_mirrors_vertex_and_counts_stats(server: EndpointServer, model_dirs: tuple[str, str]) -> None:
    client = HttpEndpoint(server.url)
    client.deploy("digits", version("v1", model_dirs[0]))
    instances, labels = digits(20)
    answer = client.predict("digits", instances)
    assert answer["deployedModelId"] == answer["model_version"] == "v1"
    assert len(answer["predictions"]) == 20
    assert sum(p == y for p, y in zip(answer["predictions"], labels, strict=True)) >= 18
    with pytest.raises(ValueError, match="features"):
        client.predict("digits", [[1.0, 2.0]])
    stats = client.describe("digits")["stats"]["v1"]
    assert (stats["requests"], stats["errors"]) == (2, 1) and stats["latency_ms_p50"] > 0


def test_routing_follows_the_split(server: EndpointServer, model_dirs: tuple[str, str]) -> None:
    client = HttpEndpoint(server.url)
    client.deploy("digits", version("v1", model_dirs[0]))
    client.deploy("digits", version("v2", model_dirs[1]))
    client.set_traffic("digits", {"v1": 75, "v2": 25})
    instance, _ = digits(1)
    served = Counter(client.predict("digits", instance)["model_version"] for _ in range(400))
    assert served["v1"] + served["v2"] == 400
    assert 50 <= served["v2"] <= 150
    pinned = {client.predict("digits", instance, route_key="user-42")["model_version"] for _ in range(10)}
    assert len(pinned) == 1
    stats = client.describe("digits")["stats"]
    assert stats["v1"]["requests"] + stats["v2"]["requests"] == 410


def test_state_survives_a_restart(tmp_path: Path, model_dirs: tuple[str, str]) -> None:
    first = EndpointServer(tmp_path / "endpoints.json")
    first.start()
    try:
        client = HttpEndpoint(first.url)
        client.deploy("digits", version("v1", model_dirs[0]))
        client.deploy("digits", version("v2", model_dirs[1]))
        client.set_traffic("digits", {"v1": 0, "v2": 100})
    finally:
        first.stop()
    second = EndpointServer(tmp_path / "endpoints.json")
    second.start()
    try:
        client = HttpEndpoint(second.url)
        assert client.traffic("digits") == {"v1": 0, "v2": 100}
        assert client.predict("digits", digits(1)[0])["model_version"] == "v2"
    finally:
        second.stop()


def test_bad_requests_get_4xx_without_stack_traces(server: EndpointServer, model_dirs: tuple[str, str]) -> None:
    client = HttpEndpoint(server.url)
    with pytest.raises(ValueError, match="not found"):
        client.predict("digits", [[0.0] * 64])
    client.deploy("digits", version("v1", model_dirs[0]))
    with pytest.raises(ValueError, match="sum to 100"):
        client.set_traffic("digits", {"v1": 90})
    with pytest.raises(ValueError, match="not deployed"):
        client.set_traffic("digits", {"v1": 50, "v9": 50})
    with pytest.raises(ValueError, match="instances"):
        client.predict("digits", "not rows")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot load"):
        client.deploy("digits", version("v2", str(server.state.state_path.parent / "missing")))

    for body, status in [(b"{not json", 400), (b"[1, 2]", 400), (b'{"instances": []}', 400)]:
        response = requests.post(f"{server.url}/v1/endpoints/digits:predict", data=body, timeout=10)
        assert response.status_code == status
        assert "message" in response.json()["error"] and "Traceback" not in response.text
    assert requests.get(f"{server.url}/v1/endpoints/nope", timeout=10).status_code == 404
    assert requests.post(f"{server.url}/v1/endpoints/digits:explode", json={}, timeout=10).status_code == 404
    assert requests.get(f"{server.url}/elsewhere", timeout=10).status_code == 404


def test_unreachable_server_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransientError):
        HttpEndpoint(f"http://127.0.0.1:{port}", timeout=2).traffic("digits")
