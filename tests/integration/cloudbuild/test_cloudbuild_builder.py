"""CloudBuildBuilder through the real google-cloud-build client (REST transport) against a local Cloud Build."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from relaunch.adapters.gcp.cloudbuild import CloudBuildBuilder, key_tag
from relaunch.pipelines.model import PipelineRun, Trigger
from relaunch.ports import TransientError
from tests.cloudbuild_server import FakeCloudBuild, serve, substitute

pytest.importorskip("google.cloud.devtools.cloudbuild_v1", reason="google-cloud-build is not installed")

SHA = "9f3c1d2e4b5a69788796a5b4c3d2e1f001234567"
CLONE = "https://github.com/relaunch-demo/digits.git"
BUILDS = "/v1/projects/proj-1/locations/europe-west1/builds"
REPO = "europe-west1-docker.pkg.dev/proj-1/relaunch"
IMAGE = f"{REPO}/digits:{SHA}"
# The file in the repository, read without the builder: what the builder sends must be exactly this.
CONFIG = yaml.safe_load((Path(__file__).parents[3] / "cloudbuild" / "train-image.yaml").read_text())
VARIABLE = re.compile(r"(?<!\$)\$\{?(_[A-Z0-9_]+)")
DIGEST = "sha256:0c7566925d2cd9997a977887b43a9b751a83e7f14301584779f3986eb62c81c6"


@pytest.fixture
def fake() -> Iterator[FakeCloudBuild]:
    with serve() as server:
        yield server


def make_builder(fake: FakeCloudBuild, **kwargs: object) -> CloudBuildBuilder:
    from google.auth.credentials import AnonymousCredentials

    return CloudBuildBuilder(
        "proj-1",
        "europe-west1",
        image_repository=REPO + "/",
        api_endpoint=fake.url,
        credentials=AnonymousCredentials(),
        **kwargs,  # type: ignore[arg-type]
    )


def make_run(run_id: str = "run-42", **trigger: object) -> PipelineRun:
    fields: dict[str, object] = {"kind": "push", "delivery_key": "d-1", "repo": "relaunch-demo/digits"}
    fields.update({"sha": SHA, "clone_url": CLONE, **trigger})
    return PipelineRun(id=run_id, pipeline="digits", trigger=Trigger(**fields))  # type: ignore[arg-type]


def test_first_build_looks_for_the_key_then_creates_a_build_of_the_exact_commit(fake: FakeCloudBuild) -> None:
    result = make_builder(fake).build(make_run(), "run-42:build")

    assert result.image is None and result.build_id in fake.builds
    assert fake.paths() == [("GET", BUILDS), ("POST", BUILDS)]
    listing, create = fake.requests
    assert listing.query["filter"] == [f'tags="{key_tag("run-42:build")}"']
    body = create.body
    # The request is the config file, as written, with this run's values in its substitutions.
    assert body["steps"] == CONFIG["steps"]
    assert body["images"] == ["$_IMAGE"]
    assert body["substitutions"] == {
        **CONFIG["substitutions"],
        "_CLONE_URL": CLONE,
        "_SHA": SHA,
        "_IMAGE": IMAGE,
        "_RELAUNCH_RUN_ID": "run-42",
        "_PIPELINE": "digits",
    }
    assert body["tags"] == ["relaunch", "digits", key_tag("run-42:build")]
    assert body["options"] == {"logging": 5, "substitutionOption": 1}  # CLOUD_LOGGING_ONLY, ALLOW_LOOSE
    assert "logsBucket" not in body and body["timeout"] == "3600s"


def test_what_cloud_build_runs_for_the_run_checks_out_and_labels_the_exact_commit(fake: FakeCloudBuild) -> None:
    make_builder(fake).build(make_run(), "run-42:build")
    body = fake.requests[-1].body
    values = body["substitutions"]
    used = {name for text in _texts(body) for name in VARIABLE.findall(text)}
    assert used == {"_CLONE_URL", "_SHA", "_IMAGE", "_DOCKERFILE", "_RELAUNCH_RUN_ID", "_PIPELINE"}
    assert all(values[name] for name in used)  # nothing left for ALLOW_LOOSE to blank out

    steps = {s["id"]: [substitute(a, values) for a in s["args"]] for s in body["steps"]}
    assert [s["id"] for s in body["steps"]] == ["check", "clone", "checkout", "image"]
    assert steps["clone"] == ["clone", "--quiet", CLONE, "src"]
    assert steps["checkout"] == ["-C", "src", "checkout", "--quiet", "--detach", SHA]
    assert steps["image"][:3] == ["build", "--file=Dockerfile", f"--tag={IMAGE}"]
    assert f"--label=org.opencontainers.image.revision={SHA}" in steps["image"]
    assert "--label=relaunch.run_id=run-42" in steps["image"] and steps["image"][-1] == "."
    assert [substitute(i, values) for i in body["images"]] == [IMAGE]
    check = body["steps"][0]
    assert [substitute(e, values) for e in check["env"]] == [f"CLONE_URL={CLONE}", f"SHA={SHA}", f"IMAGE={IMAGE}"]


def test_a_logs_bucket_and_a_dockerfile_reach_the_build(fake: FakeCloudBuild) -> None:
    builder = make_builder(fake, logs_bucket="gs://proj-1-build-logs", dockerfile="docker/train.Dockerfile")
    builder.build(make_run(), "run-42:build")

    body = fake.requests[-1].body
    assert body["logsBucket"] == "gs://proj-1-build-logs"
    assert body["options"]["logging"] == 2  # GCS_ONLY
    assert body["substitutions"]["_DOCKERFILE"] == "docker/train.Dockerfile"
    assert "--file=$_DOCKERFILE" in body["steps"][-1]["args"]


def test_another_config_file_is_sent_as_written(fake: FakeCloudBuild, tmp_path: Path) -> None:
    config = copy.deepcopy(CONFIG)
    config["steps"].append({"id": "smoke", "name": "$_IMAGE", "args": ["python", "-c", "import train"]})
    config["substitutions"]["_EXTRA"] = "kept"
    config["options"] = {"machineType": "E2_HIGHCPU_8"}
    path = tmp_path / "build.yaml"
    path.write_text(yaml.safe_dump(config))

    make_builder(fake, config=path).build(make_run(), "run-42:build")

    body = fake.requests[-1].body
    assert body["steps"] == config["steps"] and body["substitutions"]["_EXTRA"] == "kept"
    assert body["options"] == {"machineType": 5, "logging": 5}  # E2_HIGHCPU_8; a logging mode is always set


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"stepz": []}, 'no field named "stepz"'),
        ({"steps": [{"name": "gcr.io/cloud-builders/git", "argz": ["x"]}]}, 'no field named "argz"'),
        ({"options": {"logging": "LOUD"}}, "Invalid enum value LOUD"),
    ],
)
def test_a_config_the_api_would_refuse_is_an_error_naming_the_file_and_field(
    fake: FakeCloudBuild, tmp_path: Path, change: dict[str, object], message: str
) -> None:
    path = tmp_path / "build.yaml"
    path.write_text(yaml.safe_dump({**CONFIG, **change}))
    with pytest.raises(ValueError, match=message) as caught:
        make_builder(fake, config=path).build(make_run(), "run-42:build")
    assert str(path) in str(caught.value)
    assert not fake.builds


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"substitutions": {"_SHA": ""}}, "_CLONE_URL, _IMAGE, _DOCKERFILE, _RELAUNCH_RUN_ID, _PIPELINE not declared"),
        ({"substitutions": ["_SHA"]}, "substitutions: expected a mapping"),
        ({"images": ["gcr.io/p/fixed:latest"]}, r"images: must list \$_IMAGE"),
    ],
)
def test_a_config_the_builder_cannot_fill_in_is_refused_at_construction(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    path = tmp_path / "build.yaml"
    path.write_text(yaml.safe_dump({**CONFIG, **change}))
    with pytest.raises(ValueError, match=message):
        CloudBuildBuilder("p", "r", image_repository=REPO, config=path)
    path.write_text("steps: [unclosed")
    with pytest.raises(ValueError, match="not valid YAML"):
        CloudBuildBuilder("p", "r", image_repository=REPO, config=path)


def _texts(body: dict[str, Any]) -> list[str]:
    """Every string Cloud Build substitutes in: the steps' fields and the images."""
    out = list(body["images"])
    for step in body["steps"]:
        out += [step["name"], step.get("dir", ""), *step.get("args", []), *step.get("env", [])]
    return out


def test_the_same_key_never_creates_a_second_build(fake: FakeCloudBuild) -> None:
    builder = make_builder(fake)
    first = builder.build(make_run(), "run-42:build")
    again = make_builder(fake).build(make_run(), "run-42:build")  # another process, nothing remembered

    assert again.build_id == first.build_id and again.image is None
    assert [m for m, _ in fake.paths()].count("POST") == 1
    other = builder.build(make_run("run-43"), "run-43:build")
    assert other.build_id != first.build_id and len(fake.builds) == 2


def test_a_recorded_build_id_is_read_with_get_build_until_it_succeeds(fake: FakeCloudBuild) -> None:
    builder = make_builder(fake)
    run = make_run()
    build_id = builder.build(run, "run-42:build").build_id
    recorded = run.model_copy(update={"build_id": build_id})

    fake.finish(build_id, "WORKING")
    assert builder.build(recorded, "run-42:build").image is None
    fake.finish(build_id, "SUCCESS", digest=DIGEST)
    done = builder.build(recorded, "run-42:build")

    assert done.build_id == build_id
    assert done.image == f"{REPO}/digits@{DIGEST}"
    assert fake.paths()[-1] == ("GET", f"{BUILDS}/{build_id}")
    assert [m for m, _ in fake.paths()].count("POST") == 1
    # What Cloud Build publishes on `cloud-builds` carries the run id the status parser looks for.
    assert fake.builds[build_id]["substitutions"]["_RELAUNCH_RUN_ID"] == "run-42"


@pytest.mark.parametrize("status", ["FAILURE", "TIMEOUT", "CANCELLED", "INTERNAL_ERROR", "EXPIRED"])
def test_a_failed_build_is_a_permanent_error_with_its_status_and_log_url(fake: FakeCloudBuild, status: str) -> None:
    builder = make_builder(fake)
    build_id = builder.build(make_run(), "run-42:build").build_id
    fake.finish(build_id, status, detail="step 2 exited 1")

    with pytest.raises(ValueError) as caught:
        builder.build(make_run(), "run-42:build")
    message = str(caught.value)
    assert status in message and "step 2 exited 1" in message
    assert fake.builds[build_id]["logUrl"] in message


def test_a_success_without_the_image_is_refused(fake: FakeCloudBuild) -> None:
    builder = make_builder(fake)
    build_id = builder.build(make_run(), "run-42:build").build_id
    fake.finish(build_id, "SUCCESS", digest="")

    with pytest.raises(ValueError, match="pushed no"):
        builder.build(make_run(), "run-42:build")


@pytest.mark.parametrize("status", [429, 500, 503])
def test_throttling_and_server_errors_are_transient(fake: FakeCloudBuild, status: int) -> None:
    fake.errors.append(status)
    with pytest.raises(TransientError):
        make_builder(fake).build(make_run(), "run-42:build")
    assert not fake.builds  # nothing was created; the redelivered command starts over


def test_a_refusal_is_permanent(fake: FakeCloudBuild) -> None:
    fake.errors.append(403)
    with pytest.raises(ValueError, match="403"):
        make_builder(fake).build(make_run(), "run-42:build")


def test_an_unreachable_api_is_transient() -> None:
    from google.auth.credentials import AnonymousCredentials

    with serve() as gone:
        url = gone.url
    builder = CloudBuildBuilder(
        "proj-1", "europe-west1", image_repository=REPO, api_endpoint=url, credentials=AnonymousCredentials()
    )
    with pytest.raises(TransientError):
        builder.build(make_run(), "run-42:build")


def test_a_run_without_commit_or_clone_url_is_refused_naming_the_field(fake: FakeCloudBuild) -> None:
    with pytest.raises(ValueError, match="trigger.sha and trigger.clone_url"):
        make_builder(fake).build(make_run(sha=None), "run-42:build")
    assert not fake.builds


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"project": ""}, "project"),
        ({"region": " "}, "region"),
        ({"image_repository": ""}, "image_repository"),
        ({"logs_bucket": "proj-logs"}, "logs_bucket"),
    ],
)
def test_bad_settings_are_named(kwargs: dict[str, str], field: str) -> None:
    args = {"project": "p", "region": "r", "image_repository": REPO, **kwargs}
    with pytest.raises(ValueError, match=field):
        CloudBuildBuilder(args.pop("project"), args.pop("region"), **args)  # type: ignore[arg-type]
