"""The local endpoint server and its HTTP client, serving real models trained by examples/digits.

Health: per-version request/error/latency counting, windowed by a timestamp, read over HTTP; fault files that make
a version fail or slow down; and the rollout planner driven by the real health figures.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sklearn.datasets import load_digits

from relaunch.adapters.local.endpoint import EndpointNotFound, HttpEndpoint
from relaunch.adapters.local.endpoint_server import EndpointServer
from relaunch.adapters.local.endpoint_state import FAULT_FILE
from relaunch.domain.health import HealthLimits
from relaunch.domain.model import EndpointHealth, ModelVersion
from relaunch.domain.ports import Endpoint, TransientError
from relaunch.domain.rollout import CanaryRollout, advance, health_since, plan, start

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
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder the server may load models from: pytest's base folder holds every model these tests deploy."""
    return tmp_path_factory.getbasetemp()


@pytest.fixture
def server(tmp_path: Path, registry: Path) -> Iterator[EndpointServer]:
    running = EndpointServer(tmp_path / "endpoints.json", seed=7, registry_dir=registry)
    running.start()
    yield running
    running.stop()


def version(name: str, uri: str) -> ModelVersion:
    return ModelVersion(pipeline="digits", version=name, artifact_uri=uri, run_id=f"run-{name}")


def digits(n: int) -> tuple[list[list[float]], list[int]]:
    features, labels = load_digits(return_X_y=True)
    return features[:n].tolist(), labels[:n].tolist()


def test_deploy_split_undeploy(server: EndpointServer, model_dirs: tuple[str, str]) -> None:
    client = HttpEndpoint(server.url, token_path=server.token_path)
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
    client = HttpEndpoint(server.url, token_path=server.token_path)
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
    client = HttpEndpoint(server.url, token_path=server.token_path)
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


def test_state_survives_a_restart(tmp_path: Path, registry: Path, model_dirs: tuple[str, str]) -> None:
    first = EndpointServer(tmp_path / "endpoints.json", registry_dir=registry)
    first.start()
    try:
        client = HttpEndpoint(first.url, token_path=first.token_path)
        client.deploy("digits", version("v1", model_dirs[0]))
        client.deploy("digits", version("v2", model_dirs[1]))
        client.set_traffic("digits", {"v1": 0, "v2": 100})
    finally:
        first.stop()
    second = EndpointServer(tmp_path / "endpoints.json", registry_dir=registry)
    second.start()
    try:
        client = HttpEndpoint(second.url, token_path=second.token_path)
        assert client.traffic("digits") == {"v1": 0, "v2": 100}
        assert client.predict("digits", digits(1)[0])["model_version"] == "v2"
    finally:
        second.stop()


def test_bad_requests_get_4xx_without_stack_traces(server: EndpointServer, model_dirs: tuple[str, str]) -> None:
    client = HttpEndpoint(server.url, token_path=server.token_path)
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


@pytest.fixture
def own_dirs(model_dirs: tuple[str, str], tmp_path: Path) -> tuple[str, str]:
    """Private copies of the two models, so a test may put a fault file in one."""
    copies = []
    for i, src in enumerate(model_dirs, start=1):
        dest = tmp_path / f"model-v{i}"
        shutil.copytree(src, dest)
        copies.append(str(dest))
    return copies[0], copies[1]


def test_health_counts_each_version_since_a_timestamp(server: EndpointServer, own_dirs: tuple[str, str]) -> None:
    client: Endpoint = HttpEndpoint(server.url, token_path=server.token_path)
    http = HttpEndpoint(server.url, token_path=server.token_path)
    client.deploy("digits", version("v1", own_dirs[0]))
    client.deploy("digits", version("v2", own_dirs[1]))
    instances, _ = digits(3)
    empty = client.health("digits", "v2", since=0)  # deployed, no traffic yet
    assert isinstance(empty, EndpointHealth)
    assert (empty.requests, empty.errors, empty.error_rate, empty.p50_ms, empty.p95_ms) == (0, 0, 0.0, None, None)
    for _ in range(5):
        assert http.predict("digits", instances, version="v2")["model_version"] == "v2"  # pinned, at 0% traffic
    for _ in range(3):
        assert http.predict("digits", instances)["model_version"] == "v1"  # the split sends all else to v1
    with pytest.raises(ValueError, match="features"):
        http.predict("digits", [[1.0, 2.0]], version="v2")  # a model exception counts as an error

    v2 = client.health("digits", "v2", since=0)
    assert (v2.version, v2.requests, v2.errors) == ("v2", 6, 1)
    assert v2.error_rate == pytest.approx(1 / 6)
    assert v2.p50_ms is not None and v2.p95_ms is not None and 0 < v2.p50_ms <= v2.p95_ms
    assert v2.window_s > 0
    assert client.health("digits", "v1", since=0).requests == 3

    mark = time.time()
    http.predict("digits", instances, version="v2")
    recent = client.health("digits", "v2", since=mark)
    assert (recent.requests, recent.errors, recent.error_rate) == (1, 0, 0.0)
    assert http.describe("digits")["stats"]["v2"]["requests"] == 7  # describe keeps lifetime counters


def test_a_fault_file_makes_a_version_fail_then_recover(server: EndpointServer, own_dirs: tuple[str, str]) -> None:
    client = HttpEndpoint(server.url, token_path=server.token_path)
    client.deploy("digits", version("v1", own_dirs[0]))
    fault = Path(own_dirs[0]) / FAULT_FILE
    fault.write_text(json.dumps({"error_rate": 1.0}))
    instances, _ = digits(2)
    for _ in range(4):
        with pytest.raises(TransientError, match="injected fault"):
            client.predict("digits", instances)
    failing = client.health("digits", "v1", since=0)
    assert (failing.requests, failing.errors, failing.error_rate) == (4, 4, 1.0)

    fault.unlink()
    assert len(client.predict("digits", instances)["predictions"]) == 2
    assert client.health("digits", "v1", since=0).errors == 4

    fault.write_text(json.dumps({"latency_ms": 60}))
    mark = time.time()
    client.predict("digits", instances)
    slow = client.health("digits", "v1", since=mark)
    assert slow.requests == 1 and slow.p50_ms is not None and slow.p50_ms >= 60  # a floor the sleep guarantees

    fault.write_text("{not json")
    with pytest.raises(TransientError, match=FAULT_FILE):
        client.predict("digits", instances)


def test_health_refuses_bad_queries(server: EndpointServer, own_dirs: tuple[str, str]) -> None:
    client = HttpEndpoint(server.url, token_path=server.token_path)
    with pytest.raises(EndpointNotFound, match="endpoint digits not found"):
        client.health("digits", "v1", since=0)
    client.deploy("digits", version("v1", own_dirs[0]))
    with pytest.raises(EndpointNotFound, match="v9 is not deployed"):
        client.health("digits", "v9", since=0)
    with pytest.raises(EndpointNotFound, match="v9 is not deployed"):
        client.predict("digits", digits(1)[0], version="v9")
    base = f"{server.url}/v1/endpoints/digits:health"
    missing = requests.get(base, timeout=10)
    assert missing.status_code == 400 and "'version' is required" in missing.json()["error"]["message"]
    bad_since = requests.get(base, params={"version": "v1", "since": "yesterday"}, timeout=10)
    assert bad_since.status_code == 400 and "'since' must be a number" in bad_since.json()["error"]["message"]
    bad_version = requests.post(
        f"{server.url}/v1/endpoints/digits:predict", json={"instances": [[1]], "version": 3}, timeout=10
    )
    assert bad_version.status_code == 400


def test_the_only_version_can_be_undeployed(server: EndpointServer, own_dirs: tuple[str, str]) -> None:
    client = HttpEndpoint(server.url, token_path=server.token_path)
    client.deploy("digits", version("v1", own_dirs[0]))
    client.undeploy("digits", "v1")
    assert client.traffic("digits") == {}
    with pytest.raises(EndpointNotFound, match="no deployed model"):
        client.predict("digits", digits(1)[0])
    client.deploy("digits", version("v2", own_dirs[1]))
    assert client.traffic("digits") == {"v2": 100}


def test_a_canary_with_a_failing_model_is_rolled_back_on_real_health(
    server: EndpointServer, own_dirs: tuple[str, str]
) -> None:
    client = HttpEndpoint(server.url, token_path=server.token_path)
    client.deploy("digits", version("v1", own_dirs[0]))
    (Path(own_dirs[1]) / FAULT_FILE).write_text(json.dumps({"error_rate": 0.5}))
    strategy = CanaryRollout(percent=50, bake_s=3600, health=HealthLimits(min_requests=20))
    progress = start("v2", "v1", now=time.time())
    for _ in range(2):  # deploy v2 at 0%, then give it its canary share
        action = plan(strategy, progress, time.time(), deployed=client.traffic("digits"))
        if action.kind == "deploy":
            client.deploy("digits", version("v2", own_dirs[1]))
        else:
            client.set_traffic("digits", action.traffic)
        progress = advance(progress, action, time.time())
    assert progress.phase == "baking" and client.traffic("digits") == {"v1": 50, "v2": 50}

    instances, _ = digits(1)
    for i in range(60):
        try:
            client.predict("digits", instances, route_key=f"user-{i}")
        except TransientError:
            pass
    health = client.health("digits", "v2", since=health_since(progress))
    assert health.requests >= 10 and health.errors >= 1
    action = plan(strategy, progress, time.time(), health, deployed=client.traffic("digits"))
    assert action.kind == "roll_back" and "unhealthy" in action.reason
    client.set_traffic("digits", action.traffic)
    client.undeploy("digits", action.version or "")
    assert client.traffic("digits") == {"v1": 100}
