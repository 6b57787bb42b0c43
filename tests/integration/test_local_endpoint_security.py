"""The local endpoint server's defences: a token on the admin routes, loopback Host only, no cross-site Origin,
and models loaded only from the registry's folder (a model file is a pickle: loading one runs its code)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import pytest
import requests
from sklearn.dummy import DummyClassifier

from relaunch.adapters.local.endpoint import HttpEndpoint
from relaunch.adapters.local.endpoint_guard import loopback_host
from relaunch.adapters.local.endpoint_server import EndpointServer
from relaunch.adapters.local.endpoint_state import MODEL_FILE
from relaunch.adapters.local.secret_files import read_secret
from relaunch.domain.model import ModelVersion

ADMIN = {
    "deploy": {"version": "v2", "artifact_uri": "REGISTRY/digits/v2"},
    "setTraffic": {"split": {"v1": 0, "v2": 100}},
    "undeploy": {"version": "v1"},
}


class _RunsOnLoad:
    """A 'model' whose unpickling creates a folder: proof that a load ran code the file chose."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.mkdir, (str(self.marker),)


def good_model(folder: Path) -> str:
    folder.mkdir(parents=True)
    joblib.dump(DummyClassifier(strategy="most_frequent").fit([[0.0], [1.0]], [3, 3]), folder / MODEL_FILE)
    return str(folder)


def evil_model(folder: Path, marker: Path) -> str:
    folder.mkdir(parents=True)
    joblib.dump(_RunsOnLoad(marker), folder / MODEL_FILE)
    return str(folder)


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    good_model(tmp_path / "registry" / "digits" / "v1")
    good_model(tmp_path / "registry" / "digits" / "v2")
    return tmp_path / "registry"


@pytest.fixture
def server(tmp_path: Path, registry: Path) -> Iterator[EndpointServer]:
    running = EndpointServer(
        tmp_path / "endpoint.json", seed=1, registry_dir=registry, token_path=tmp_path / "secrets" / "endpoint_token"
    )
    running.start()
    yield running
    running.stop()


@pytest.fixture
def client(server: EndpointServer, registry: Path) -> HttpEndpoint:
    client = HttpEndpoint(server.url, token_path=server.token_path)
    client.deploy(
        "digits",
        ModelVersion(pipeline="digits", version="v1", artifact_uri=str(registry / "digits" / "v1"), run_id="r1"),
    )
    return client


def token(server: EndpointServer) -> str:
    value = read_secret(server.token_path)
    assert value is not None
    return value


def admin(server: EndpointServer, verb: str, registry: Path, **headers: str) -> requests.Response:
    body = json.loads(json.dumps(ADMIN[verb]).replace("REGISTRY", str(registry)))
    return requests.post(f"{server.url}/v1/endpoints/digits:{verb}", json=body, headers=headers, timeout=10)


def refused(response: requests.Response, code: int, named: str) -> None:
    assert response.status_code == code, response.text
    error = response.json()["error"]
    assert named in error["message"] and "Traceback" not in response.text


@pytest.mark.parametrize("verb", sorted(ADMIN))
def test_admin_routes_without_the_token_are_refused(
    server: EndpointServer, client: HttpEndpoint, registry: Path, verb: str
) -> None:
    before = client.describe("digits")
    refused(admin(server, verb, registry), 401, "token")
    refused(admin(server, verb, registry, Authorization="Bearer wrong"), 401, "token")
    refused(admin(server, verb, registry, Authorization=f"Basic {token(server)}"), 401, "token")
    refused(admin(server, verb, registry, Authorization=f"Bearer {token(server)}x"), 401, "token")
    assert client.describe("digits") == before
    assert HttpEndpoint(server.url).traffic("digits") == {"v1": 100}  # reading needs no token
    with pytest.raises(ValueError, match="401"):
        HttpEndpoint(server.url).set_traffic("digits", {"v1": 100})


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:80", "127.0.0.1.evil.example", "localhost.evil", "::1", ""]
)
def test_a_foreign_host_is_refused_on_every_route(
    server: EndpointServer, client: HttpEndpoint, registry: Path, host: str
) -> None:
    base = f"{server.url}/v1/endpoints/digits"
    refused(requests.get(base, headers={"Host": host}, timeout=10), 403, "Host")
    refused(requests.get(f"{server.url}/healthz", headers={"Host": host}, timeout=10), 403, "Host")
    refused(
        requests.post(f"{base}:predict", json={"instances": [[0.0]]}, headers={"Host": host}, timeout=10), 403, "Host"
    )
    refused(admin(server, "setTraffic", registry, Host=host, Authorization=f"Bearer {token(server)}"), 403, "Host")


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://127.0.0.1:1"])
def test_a_cross_site_origin_is_refused_on_every_post(
    server: EndpointServer, client: HttpEndpoint, registry: Path, origin: str
) -> None:
    bearer = f"Bearer {token(server)}"
    for verb in ADMIN:
        refused(admin(server, verb, registry, Origin=origin, Authorization=bearer), 403, "Origin")
    predict = requests.post(
        f"{server.url}/v1/endpoints/digits:predict", json={"instances": [[0.0]]}, headers={"Origin": origin}, timeout=10
    )
    refused(predict, 403, "Origin")
    assert client.health("digits", "v1", since=0).requests == 0  # a page cannot feed a canary's health figures


def test_loopback_hosts_are_served(server: EndpointServer, client: HttpEndpoint) -> None:
    port = server.url.rsplit(":", 1)[1]
    for host in ["localhost", f"localhost:{port}", f"127.0.0.1:{port}", "127.8.9.10", f"[::1]:{port}", "LOCALHOST"]:
        answer = requests.get(f"{server.url}/v1/endpoints/digits", headers={"Host": host}, timeout=10)
        assert answer.status_code == 200, (host, answer.text)


def test_loopback_host_is_pure() -> None:
    assert all(
        loopback_host(h) for h in ["localhost", "127.0.0.1", "127.0.0.1:8090", "[::1]", "[::1]:1", "Localhost:80"]
    )
    bad = [
        None,
        "",
        "evil.example",
        "::1",
        "[::1",
        "[::2]",
        "127.0.0.1:x",
        "127.0.0.1:",
        "0.0.0.0",
        "10.0.0.1",
        "localhost.",
        "127.1",
        "[::ffff:8.8.8.8]",
        "local\x1bhost",
        "\udcff",
        "localhost:80:80",
    ]
    assert not any(loopback_host(h) for h in bad)


def outside_registry_deploys(tmp_path: Path, registry: Path, marker: Path) -> list[str]:
    """Artifact paths that do not lie in the registry, each holding a model that runs code when loaded."""
    outside = evil_model(tmp_path / "outside", marker)
    (registry / "digits" / "linked").symlink_to(outside, target_is_directory=True)
    (registry / "digits" / "v7").mkdir()
    (registry / "digits" / "v7" / MODEL_FILE).symlink_to(Path(outside) / MODEL_FILE)
    return [
        outside,
        f"file://{outside}",
        str(registry / ".." / "outside"),
        str(registry / "digits" / "linked"),
        str(registry / "digits" / "v7"),
        str(registry),
    ]


def test_deploy_outside_the_registry_is_refused_before_loading(
    server: EndpointServer, client: HttpEndpoint, registry: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "code-ran"
    bearer = {"Authorization": f"Bearer {token(server)}"}
    for i, uri in enumerate(outside_registry_deploys(tmp_path, registry, marker)):
        body = {"version": f"x{i}", "artifact_uri": uri}
        answer = requests.post(f"{server.url}/v1/endpoints/digits:deploy", json=body, headers=bearer, timeout=10)
        refused(answer, 403, "registry")
        assert not marker.exists(), uri
    assert [d["version"] for d in client.describe("digits")["deployed"]] == ["v1"]


def test_a_state_file_naming_a_path_outside_the_registry_is_refused_on_load(tmp_path: Path, registry: Path) -> None:
    marker = tmp_path / "code-ran"
    outside = evil_model(tmp_path / "outside", marker)
    state = tmp_path / "endpoint.json"
    deployed = [{"version": "v1", "artifact_uri": outside, "deployed_at": 0.0}]
    state.write_text(json.dumps({"endpoints": {"digits": {"deployed": deployed, "split": {"v1": 100}}}}))
    with pytest.raises(RuntimeError, match="outside the registry") as refusal:
        server = EndpointServer(state, registry_dir=registry, token_path=tmp_path / "secrets" / "endpoint_token")
        server.start()
        try:
            requests.post(f"{server.url}/v1/endpoints/digits:predict", json={"instances": [[0.0]]}, timeout=10)
        finally:
            server.stop()
    assert str(state) in str(refusal.value) and not marker.exists()


def test_the_token_flow_works_and_the_token_stays_secret(
    server: EndpointServer, registry: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = HttpEndpoint(server.url, token_path=server.token_path)
    v1, v2 = (
        ModelVersion(pipeline="digits", version=v, artifact_uri=str(registry / "digits" / v), run_id=v)
        for v in ("v1", "v2")
    )
    client.deploy("digits", v1)
    client.deploy("digits", v2)
    client.set_traffic("digits", {"v1": 0, "v2": 100})
    assert client.predict("digits", [[0.0]])["predictions"] == [3]
    client.undeploy("digits", "v1")
    assert client.traffic("digits") == {"v2": 100}
    assert oct(server.token_path.stat().st_mode & 0o777) == "0o600"
    assert oct(server.token_path.parent.stat().st_mode & 0o777) == "0o700"
    with pytest.raises(ValueError, match="401") as refusal:
        HttpEndpoint(server.url, token_path=server.token_path.with_name("absent")).set_traffic("digits", {"v2": 100})
    assert token(server) not in caplog.text + str(refusal.value)


def test_defaults_follow_the_state_folder(tmp_path: Path) -> None:
    server = EndpointServer(tmp_path / "endpoint.json")
    assert server.token_path == tmp_path / "secrets" / "endpoint_token"
    assert server.registry_dir == tmp_path / "registry"
