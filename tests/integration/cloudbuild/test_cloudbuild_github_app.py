"""CloudBuildBuilder for private repositories: the clone step alone gets the GitHub App's key, from Secret Manager.

What Cloud Build requires of a build's secrets (cloudbuild.v1 discovery document, SecretManagerSecret and
BuildStep.secretEnv): every secretEnv a step names is defined in availableSecrets, and every one defined is used by
a step. The fake refuses a build that breaks either rule, as Cloud Build does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from relaunch.adapters.gcp.cloudbuild import CloneApp, CloudBuildBuilder
from relaunch.bootstrap import App
from relaunch.emulated.cloudbuild import FakeCloudBuild, serve
from relaunch.settings import Settings
from tests.integration.cloudbuild.test_cloudbuild_builder import BUILDS, CONFIG, make_builder, make_run

pytest.importorskip("google.cloud.devtools.cloudbuild_v1", reason="google-cloud-build is not installed")

APP = CloneApp(key_secret="relaunch-github-app-key", app_id="987654", installation_id=31337)
KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow-shaped-like-a-key\n-----END RSA PRIVATE KEY-----\n"


@pytest.fixture
def fake() -> Iterator[FakeCloudBuild]:
    with serve() as server:
        yield server


def created(fake: FakeCloudBuild) -> dict[str, Any]:
    (create,) = [r for r in fake.requests if r.method == "POST"]
    assert create.path == BUILDS
    body: dict[str, Any] = create.body
    return body


def test_the_clone_step_alone_reads_the_apps_key_from_secret_manager(fake: FakeCloudBuild) -> None:
    result = make_builder(fake, clone_app=APP).build(make_run(), "run-42:build")

    assert result.build_id in fake.builds  # the fake accepted the secrets, as Cloud Build would
    body = created(fake)
    version = "projects/proj-1/secrets/relaunch-github-app-key/versions/latest"
    assert body["availableSecrets"] == {"secretManager": [{"versionName": version, "env": "GITHUB_APP_PRIVATE_KEY"}]}
    assert {s["id"]: s.get("secretEnv") for s in body["steps"]} == {
        "check": None,
        "clone": ["GITHUB_APP_PRIVATE_KEY"],
        "checkout": None,
        "image": None,  # the step that runs the repository's Dockerfile never sees the key
    }
    assert [dict(s, secretEnv=None) if s["id"] == "clone" else s for s in body["steps"]] == [
        dict(s, secretEnv=None) if s["id"] == "clone" else s for s in CONFIG["steps"]
    ]
    subs = body["substitutions"]
    assert (subs["_GITHUB_APP_ID"], subs["_GITHUB_APP_INSTALLATION_ID"]) == ("987654", "31337")
    assert subs["_GITHUB_API_URL"] == "https://api.github.com"


def test_without_an_app_the_build_has_no_secret_and_clones_anonymously(fake: FakeCloudBuild) -> None:
    make_builder(fake).build(make_run(), "run-42:build")

    body = created(fake)
    assert "availableSecrets" not in body and not any("secretEnv" in s for s in body["steps"])
    assert body["substitutions"]["_GITHUB_APP_ID"] == ""


def test_the_fake_refuses_a_secret_env_no_available_secret_defines(fake: FakeCloudBuild) -> None:
    build = {"steps": [{"name": "gcr.io/cloud-builders/git", "secretEnv": ["KEY"]}]}
    status, answer = fake.handle("POST", BUILDS, json.dumps(build).encode())
    assert status == 400 and "KEY" in answer["error"]["message"]


def test_a_config_without_a_clone_step_cannot_take_the_apps_key(tmp_path: Path) -> None:
    config = {**CONFIG, "steps": [s for s in CONFIG["steps"] if s["id"] != "clone"]}
    path = tmp_path / "build.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match=r"build\.yaml: steps: no step with id 'clone'"):
        CloudBuildBuilder("proj-1", "europe-west1", image_repository="r", config=path, clone_app=APP)


def test_the_composition_root_gives_builds_the_apps_key_secret_never_the_key(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        profile="gcp",
        gcp_project="proj-1",
        image_repository="europe-west1-docker.pkg.dev/proj-1/relaunch",
        github_api_url="https://ghe.example.com/api/v3",
        github_app_id="987654",
        github_app_private_key=SecretStr(KEY),
        github_app_installation_id=31337,
        build_github_app_key_secret="relaunch-github-app-key",
    )
    builder = App(settings).builder
    assert isinstance(builder, CloudBuildBuilder)
    assert builder.clone_app == CloneApp("relaunch-github-app-key", "987654", 31337, "https://ghe.example.com/api/v3")
    sent = str(builder.build_config(make_run(), "k"))
    assert "MIIEow" not in sent and "relaunch-github-app-key" in sent
