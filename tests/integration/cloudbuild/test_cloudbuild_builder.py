"""CloudBuildBuilder through the real google-cloud-build client (REST transport) against a local Cloud Build."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from relaunch.adapters.gcp.cloudbuild import CloudBuildBuilder, key_tag
from relaunch.pipelines.model import PipelineRun, Trigger
from relaunch.ports import TransientError
from tests.cloudbuild_server import FakeCloudBuild, serve

pytest.importorskip("google.cloud.devtools.cloudbuild_v1", reason="google-cloud-build is not installed")

SHA = "9f3c1d2e4b5a69788796a5b4c3d2e1f001234567"
CLONE = "https://github.com/relaunch-demo/digits.git"
BUILDS = "/v1/projects/proj-1/locations/europe-west1/builds"
REPO = "europe-west1-docker.pkg.dev/proj-1/relaunch"
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
    image = f"{REPO}/digits:{SHA}"
    assert [(s["id"], s["name"]) for s in body["steps"]] == [
        ("clone", "gcr.io/cloud-builders/git"),
        ("checkout", "gcr.io/cloud-builders/git"),
        ("image", "gcr.io/cloud-builders/docker"),
    ]
    assert body["steps"][0]["args"] == ["clone", "--quiet", CLONE, "src"]
    assert body["steps"][1]["args"] == ["-C", "src", "checkout", "--quiet", "--detach", "$_SHA"]
    docker = body["steps"][2]
    assert docker["dir"] == "src" and docker["args"][:5] == ["build", "-f", "Dockerfile", "-t", image]
    assert "relaunch.run_id=$_RELAUNCH_RUN_ID" in docker["args"]
    assert body["images"] == [image]
    assert body["substitutions"] == {"_RELAUNCH_RUN_ID": "run-42", "_SHA": SHA, "_PIPELINE": "digits"}
    assert body["tags"] == ["relaunch", "digits", key_tag("run-42:build")]
    assert body["options"] == {"logging": 5, "substitutionOption": 1}  # CLOUD_LOGGING_ONLY, ALLOW_LOOSE
    assert "logsBucket" not in body and body["timeout"] == "3600s"


def test_a_logs_bucket_and_a_dockerfile_reach_the_build(fake: FakeCloudBuild) -> None:
    builder = make_builder(fake, logs_bucket="gs://proj-1-build-logs", dockerfile="docker/train.Dockerfile")
    builder.build(make_run(), "run-42:build")

    body = fake.requests[-1].body
    assert body["logsBucket"] == "gs://proj-1-build-logs"
    assert body["options"]["logging"] == 2  # GCS_ONLY
    assert body["steps"][2]["args"][:3] == ["build", "-f", "docker/train.Dockerfile"]


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
