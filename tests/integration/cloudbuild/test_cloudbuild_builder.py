"""CloudBuildBuilder through the real google-cloud-build client (REST transport) against a local Cloud Build."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from relaunch.adapters.gcp.cloudbuild import CloudBuildBuilder, key_tag, run_image_tag
from relaunch.domain.model import PipelineRun, Trigger
from relaunch.domain.ports import TransientError
from relaunch.emulated.cloudbuild import FakeCloudBuild, serve, substitute

pytest.importorskip("google.cloud.devtools.cloudbuild_v1", reason="google-cloud-build is not installed")

SHA = "9f3c1d2e4b5a69788796a5b4c3d2e1f001234567"
HEAD = "0123456789abcdef0123456789abcdef01234567"  # what refs/heads/main resolves to when a ref run builds
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


def make_run(run_id: str = "run-42", /, **trigger: object) -> PipelineRun:
    fields: dict[str, object] = {"kind": "push", "delivery_key": "d-1", "repo": "relaunch-demo/digits"}
    fields.update({"sha": SHA, "ref": "refs/heads/main", "clone_url": CLONE, **trigger})
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
        "_REF": "refs/heads/main",
        "_IMAGE": IMAGE,
        "_RELAUNCH_RUN_ID": "run-42",
        "_PIPELINE": "digits",
    }
    assert body["tags"] == ["relaunch", "digits", key_tag("run-42:build")]
    assert body["options"] == {"logging": 5, "substitutionOption": 1}  # CLOUD_LOGGING_ONLY, ALLOW_LOOSE
    assert "logsBucket" not in body and body["timeout"] == "3600s"


def test_a_pull_request_build_fetches_its_head_by_number(fake: FakeCloudBuild) -> None:
    run = make_run(kind="pull_request", ref="refs/pull/7/head", pr_number=7, head_repo="mallory/digits")
    make_builder(fake).build(run, "run-42:build")
    assert fake.requests[-1].body["substitutions"]["_PR"] == "7"  # the clone step fetches refs/pull/7/head


def test_what_cloud_build_runs_for_the_run_checks_out_and_labels_the_exact_commit(fake: FakeCloudBuild) -> None:
    make_builder(fake).build(make_run(), "run-42:build")
    body = fake.requests[-1].body
    values = body["substitutions"]
    used = {name for text in _texts(body) for name in VARIABLE.findall(text)}
    app = {"_GITHUB_APP_ID", "_GITHUB_APP_INSTALLATION_ID", "_GITHUB_API_URL"}  # cloning as a GitHub App only
    assert used == {"_CLONE_URL", "_SHA", "_REF", "_PR", "_IMAGE", "_DOCKERFILE", "_RELAUNCH_RUN_ID", "_PIPELINE"} | app
    assert all(values[name] for name in used - {"_PR"} - app)  # nothing left for ALLOW_LOOSE to blank out
    assert values["_PR"] == ""  # a push is no pull request

    assert [s["id"] for s in body["steps"]] == ["check", "clone", "checkout", "image"]
    steps = {s["id"]: s for s in body["steps"]}
    # The scripts get the values as environment variables (tests/unit/test_cloudbuild_files.py runs them).
    env = {i: [substitute(e, values) for e in s.get("env", [])] for i, s in steps.items()}
    assert env["check"] == [f"CLONE_URL={CLONE}", f"SHA={SHA}", "REF=refs/heads/main", "PR=", f"IMAGE={IMAGE}"]
    assert env["clone"][:4] == [f"CLONE_URL={CLONE}", f"SHA={SHA}", "REF=refs/heads/main", "PR="]
    assert env["checkout"] == [f"SHA={SHA}"]
    assert env["image"] == ["DOCKERFILE=Dockerfile", f"IMAGE={IMAGE}", "RUN_ID=run-42", "PIPELINE=digits"]
    assert [substitute(i, values) for i in body["images"]] == [IMAGE]


def test_a_run_with_only_a_ref_builds_its_head_under_a_run_tag_and_reports_the_commit(fake: FakeCloudBuild) -> None:
    builder = make_builder(fake)
    run = make_run("digits-0a1b2c3d4e", sha=None, kind="schedule")
    build_id = builder.build(run, "digits-0a1b2c3d4e:build").build_id
    values = fake.builds[build_id]["substitutions"]
    assert values["_SHA"] == "" and values["_REF"] == "refs/heads/main"
    assert values["_IMAGE"] == builder.image_for(run) == f"{REPO}/digits:run-digits-0a1b2c3d4e"

    fake.finish(build_id, "SUCCESS", digest=DIGEST, resolved_sha=HEAD)
    done = builder.build(run, "digits-0a1b2c3d4e:build")

    assert done.image == f"{REPO}/digits@{DIGEST}" and done.sha == HEAD
    # The orchestrator records the commit on the run; a redelivered command still finds the run-<id> image.
    recorded = run.model_copy(update={"build_id": build_id, "trigger": run.trigger.model_copy(update={"sha": HEAD})})
    again = make_builder(fake).build(recorded, "digits-0a1b2c3d4e:build")
    assert again == done
    assert [m for m, _ in fake.paths()].count("POST") == 1


def test_a_run_tag_is_a_valid_docker_tag_and_distinct_per_run() -> None:
    docker_tag = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
    assert run_image_tag("digits-0a1b2c3d4e") == "run-digits-0a1b2c3d4e"
    odd = ["a/b", "a:b", "a b", "a+b", "é", "x" * 200, "x" * 200 + "y"]
    tags = [run_image_tag(run_id) for run_id in odd]
    assert all(docker_tag.match(tag) for tag in tags), tags
    assert len(set(tags)) == len(odd)  # replaced or cut characters never merge two runs


def test_a_logs_bucket_and_a_dockerfile_reach_the_build(fake: FakeCloudBuild) -> None:
    builder = make_builder(fake, logs_bucket="gs://proj-1-build-logs", dockerfile="docker/train.Dockerfile")
    builder.build(make_run(), "run-42:build")

    body = fake.requests[-1].body
    assert body["logsBucket"] == "gs://proj-1-build-logs"
    assert body["options"]["logging"] == 2  # GCS_ONLY
    assert body["substitutions"]["_DOCKERFILE"] == "docker/train.Dockerfile"
    assert "DOCKERFILE=$_DOCKERFILE" in body["steps"][-1]["env"]


def test_builds_run_as_the_configured_service_account(fake: FakeCloudBuild) -> None:
    make_builder(fake).build(make_run(), "run-42:build")
    assert "serviceAccount" not in fake.requests[-1].body  # Cloud Build's default account
    builder = make_builder(fake, service_account="relaunch-builder@proj-1.iam.gserviceaccount.com")
    builder.build(make_run(), "run-43:build")
    body = fake.requests[-1].body
    assert body["serviceAccount"] == "projects/proj-1/serviceAccounts/relaunch-builder@proj-1.iam.gserviceaccount.com"
    assert body["options"]["logging"] == 5  # CLOUD_LOGGING_ONLY: a build with its own account must say where logs go
    with pytest.raises(ValueError, match="service_account must be an email"):
        make_builder(fake, service_account="relaunch-builder")


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
        ({"steps": [{"id": "checkout", "name": "gcr.io/cloud-builders/git", "argz": ["x"]}]}, 'no field named "argz"'),
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
        ({"substitutions": {"_SHA": ""}}, "_CLONE_URL, _REF, _PR, _IMAGE, _DOCKERFILE, _RELAUNCH_RUN_ID, _PIPELINE"),
        ({"steps": [{"id": "git", "name": "gcr.io/cloud-builders/git", "args": ["-v"]}]}, "no step with id 'checkout'"),
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
    assert done.image == f"{REPO}/digits@{DIGEST}" and done.sha == SHA
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


@pytest.mark.parametrize(
    ("trigger", "field"),
    [
        ({"sha": None, "ref": None}, "trigger.sha or trigger.ref is required"),
        ({"clone_url": None}, "trigger.clone_url is required"),
        ({"sha": None, "clone_url": None}, "trigger.clone_url is required"),
    ],
)
def test_a_run_without_commit_and_ref_or_without_clone_url_is_refused_naming_the_field(
    fake: FakeCloudBuild, trigger: dict[str, object], field: str
) -> None:
    with pytest.raises(ValueError, match=field) as caught:
        make_builder(fake).build(make_run(**trigger), "run-42:build")
    assert "run-42" in str(caught.value)
    assert not fake.builds


@pytest.mark.parametrize(
    ("trigger", "output", "named"),
    [
        ({}, HEAD, f"checked out {HEAD}, not the commit the run names \\({SHA}\\)"),
        ({"sha": None}, None, r"\(steps\[2\]\) output nothing, not a commit SHA"),  # the fake's default: the empty _SHA
        ({"sha": None}, "", "output nothing, not a commit SHA"),
        ({"sha": None}, "fatal: no such ref: refs/heads/main\n", "output 'fatal: no such ref"),
        ({"sha": None}, HEAD[:12], f"output '{HEAD[:12]}', not a commit SHA"),
    ],
)
def test_a_success_without_the_commit_the_run_needs_is_an_error_naming_the_build_and_step(
    fake: FakeCloudBuild, trigger: dict[str, object], output: str | None, named: str
) -> None:
    builder = make_builder(fake)
    build_id = builder.build(make_run(**trigger), "run-42:build").build_id
    fake.finish(build_id, "SUCCESS", digest=DIGEST, resolved_sha=output)

    with pytest.raises(ValueError, match=named) as caught:
        builder.build(make_run(**trigger), "run-42:build")
    assert f"Cloud Build {build_id} succeeded but its step 'checkout'" in str(caught.value)


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
