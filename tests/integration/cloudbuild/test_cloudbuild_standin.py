"""The Cloud Build stand-in (relaunch.emulated): it refuses what the API refuses and, given an executor, really builds.

The builds go through relaunch's CloudBuildBuilder and the google-cloud-build SDK (REST). The repository is a
throwaway git repository on disk; the pipeline names its GitHub URL, which the stand-in reads from the local copy.
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from relaunch.adapters.gcp.cloudbuild import CloudBuildBuilder
from relaunch.domain.model import PipelineRun, Trigger
from relaunch.emulated.cloudbuild import FakeCloudBuild, LocalBuilds, serve
from relaunch.emulated.discovery_schema import document, problems
from relaunch.triggers.cloudbuild import parse_build
from relaunch.triggers.pubsub import PubSubMessage

pytest.importorskip("google.cloud.devtools.cloudbuild_v1", reason="google-cloud-build is not installed")

CLONE = "https://github.com/relaunch-demo/digits.git"
BUILDS = "/v1/projects/proj-1/locations/europe-west1/builds"
REPO = "europe-west1-docker.pkg.dev/proj-1/relaunch"


@dataclass
class Stand:
    fake: FakeCloudBuild
    builder: CloudBuildBuilder
    repo: Path
    heard: list[dict[str, Any]]


def git(repo: Path, *args: str) -> str:
    command = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def stand(tmp_path: Path) -> Iterator[Stand]:
    from google.auth.credentials import AnonymousCredentials

    repo = tmp_path / "digits"
    repo.mkdir()
    subprocess.run(["git", "init", "--quiet", "-b", "main", str(repo)], check=True)
    heard: list[dict[str, Any]] = []
    executor = LocalBuilds(images_root=tmp_path / "images", sources={CLONE: repo.as_uri()})
    with serve(executor=executor, on_status=heard.append) as fake:
        builder = CloudBuildBuilder(
            "proj-1", "europe-west1", image_repository=REPO, api_endpoint=fake.url, credentials=AnonymousCredentials()
        )
        yield Stand(fake, builder, repo, heard)
        assert fake.refused == []  # nothing relaunch sent broke the published Build schema
        assert fake.hook_errors == []


def run_of(sha: str | None, ref: str = "refs/heads/main", **more: Any) -> PipelineRun:
    fields = {"kind": "push", "delivery_key": "d-1", "repo": "relaunch-demo/digits", "clone_url": CLONE, **more}
    return PipelineRun(id="run-42", pipeline="digits", trigger=Trigger(sha=sha, ref=ref, **fields))


def build_to_the_end(stand: Stand, run: PipelineRun) -> Any:
    build_id = stand.builder.build(run, "run-42:build").build_id
    stand.fake.wait(build_id, timeout=60)
    return stand.builder.build(run.model_copy(update={"build_id": build_id}), "run-42:build")


def test_a_pushed_commit_is_really_built_and_its_image_is_a_clean_copy(stand: Stand) -> None:
    first = commit(stand.repo, {"Dockerfile": "FROM python:3.12\n", "train.py": "print(1)\n"}, "one")
    commit(stand.repo, {"train.py": "print(2)\n"}, "two")  # the branch moved on: the pushed commit is still built

    result = build_to_the_end(stand, run_of(first))

    assert result.sha == first and result.image and result.image.startswith(f"{REPO}/digits@sha256:")
    folder = stand.fake.image_folder(result.image)
    assert sorted(p.name for p in folder.iterdir()) == ["Dockerfile", "train.py"]  # no .git
    assert (folder / "train.py").read_text() == "print(1)\n"
    build = stand.fake.builds[result.build_id]
    assert build["status"] == "SUCCESS" and build["results"]["images"][0]["name"] == f"{REPO}/digits:{first}"
    assert problems(document("cloudbuild.v1.Build"), "Build", build) == []  # what it answers fits the schema too


def test_a_ref_builds_its_head_and_reports_the_commit(stand: Stand) -> None:
    head = commit(stand.repo, {"Dockerfile": "FROM python:3.12\n"}, "one")
    result = build_to_the_end(stand, run_of(None))
    assert result.sha == head and result.image
    assert stand.fake.image_folder(result.image).joinpath("Dockerfile").is_file()


def test_a_pull_requests_head_is_fetched_by_number_though_no_branch_holds_it(stand: Stand) -> None:
    commit(stand.repo, {"Dockerfile": "FROM python:3.12\n"}, "one")
    fork = commit(stand.repo, {"train.py": "print('fork')\n"}, "a fork's commit")
    git(stand.repo, "update-ref", "refs/pull/7/head", fork)  # what GitHub serves for a fork's pull request
    git(stand.repo, "reset", "--quiet", "--hard", "HEAD~1")
    run = run_of(fork, "refs/pull/7/head", kind="pull_request", pr_number=7, head_repo="mallory/digits")
    result = build_to_the_end(stand, run)
    assert result.sha == fork and result.image
    assert stand.fake.image_folder(result.image).joinpath("train.py").read_text() == "print('fork')\n"


def test_on_status_hears_each_change_as_cloud_build_publishes_it(stand: Stand) -> None:
    sha = commit(stand.repo, {"Dockerfile": "FROM python:3.12\n"}, "one")
    build_to_the_end(stand, run_of(sha))

    assert [b["status"] for b in stand.heard] == ["QUEUED", "WORKING", "SUCCESS"]
    for build in stand.heard:  # the demo publishes each on `cloud-builds`, with the attributes Cloud Build sets
        attributes = {"buildId": build["id"], "status": build["status"]}
        message = PubSubMessage("m-1", json.dumps(build).encode(), attributes, None, None, None)
        event = parse_build(message)
        assert event.run_id == "run-42" and event.status == build["status"]
    (image,) = parse_build(message).images  # the final one names the image pushed, with its digest
    assert image.startswith(f"{REPO}/digits:{sha}@sha256:")


def test_a_missing_commit_fails_the_checkout_step_and_says_so(stand: Stand) -> None:
    commit(stand.repo, {"Dockerfile": "FROM python:3.12\n"}, "one")
    with pytest.raises(ValueError, match=r"FAILURE: Build step failure: build step 2 .*git.*") as caught:
        build_to_the_end(stand, run_of("0" * 40))
    assert "0000000000000000000000000000000000000000" in str(caught.value)
    assert [b["status"] for b in stand.heard] == ["QUEUED", "WORKING", "FAILURE"]


def test_a_missing_dockerfile_fails_the_image_step_as_the_real_step_does(stand: Stand) -> None:
    sha = commit(stand.repo, {"train.py": "print(1)\n"}, "one")
    with pytest.raises(ValueError, match=r"build step 3 .*_DOCKERFILE: the repository has no 'Dockerfile'"):
        build_to_the_end(stand, run_of(sha))


def test_a_clone_url_that_would_leave_the_machine_is_not_cloned(stand: Stand) -> None:
    stand.fake.executor = LocalBuilds(images_root=stand.repo.parent / "images")  # no local copy of the URL
    with pytest.raises(ValueError, match=r"build step 0 .*file:// or https:// on the loopback interface"):
        build_to_the_end(stand, run_of("a" * 40))


def test_a_body_the_published_schema_does_not_allow_is_refused_naming_the_field(stand: Stand) -> None:
    body = {"steps": [{"name": "gcr.io/cloud-builders/git", "arg": ["version"]}], "options": {"logging": "LOUD"}}
    request = urllib.request.Request(stand.fake.url + BUILDS, json.dumps(body).encode(), method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    answer = json.loads(caught.value.read())["error"]
    assert caught.value.code == 400 and answer["status"] == "INVALID_ARGUMENT"
    fields = [v["field"] for v in answer["details"][0]["fieldViolations"]]
    assert fields == ["build.steps[0].arg", "build.options.logging"]
    assert stand.fake.refused == [[v["description"] for v in answer["details"][0]["fieldViolations"]]]
    stand.fake.refused.clear()  # seen; the fixture asserts nothing else was refused
    assert not stand.fake.builds


def test_enum_numbers_the_sdk_sends_are_read_by_their_proto_numbers(stand: Stand) -> None:
    status, answer = stand.fake.handle("POST", BUILDS, json.dumps({"options": {"machineType": 5}}).encode())
    assert status == 200 and answer["metadata"]["build"]["options"] == {"machineType": "E2_HIGHCPU_8"}
    # No executor run is wanted for a build without steps: it fails at once, saying which steps it runs.
    assert "train-image.yaml" in stand.fake.wait(answer["metadata"]["build"]["id"])["statusDetail"]
