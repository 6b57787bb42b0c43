"""Cloud Build image builder: builds and pushes the training image of a run's commit, or of its ref's head.

What the build does is the file cloudbuild/train-image.yaml (shipped in the package beside this module): its steps
clone the repository and check out the commit (`git clone` + `git checkout`) rather than using a Cloud Build
`source`, so a GitHub repository needs no Cloud Build connection or mirror. The checkout is pinned to the SHA the
webhook named; a run that names only a ref (schedule, drift, W&B, a dispatch without a SHA) builds the ref's head,
and the `checkout` step reports the commit it checked out through `$BUILDER_OUTPUT/output`, which Cloud Build
returns in `results.buildStepOutputs` and `build()` returns as `BuildResult.sha`. This module only fills in a run:
its substitutions, its tags, the logs settings. Each build carries a tag derived from the idempotency key, so a
retried `build()` finds the build it started instead of starting a second one.

A private repository is cloned as a GitHub App (`CloneApp`): the build names the app's private key in Secret Manager
under `availableSecrets` and gives it to the `clone` step alone (`secretEnv`), which mints a read-only installation
token for that one repository. The key never passes through relaunch, and each build mints its own token, so none
outlives a build by more than GitHub's hour and no build waits on a token minted for another.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from relaunch.adapters.gcp.local_endpoint import credentials_for
from relaunch.domain.gitnames import clone_url_problem, is_local_url, is_sha, run_ref_problem
from relaunch.domain.model import BuildResult, PipelineRun
from relaunch.domain.ports import TransientError

PENDING = frozenset({"STATUS_UNKNOWN", "PENDING", "QUEUED", "WORKING"})
FAILED = frozenset({"FAILURE", "INTERNAL_ERROR", "TIMEOUT", "CANCELLED", "EXPIRED"})
CONFIG_RESOURCE = "train-image.yaml"  # a link to cloudbuild/train-image.yaml, resolved when the wheel is built
CONFIG_NAME = "cloudbuild/train-image.yaml"
# Set on every build; the config must declare each (and so document it).
RUN_SUBSTITUTIONS = ("_CLONE_URL", "_SHA", "_REF", "_PR", "_IMAGE", "_DOCKERFILE", "_RELAUNCH_RUN_ID", "_PIPELINE")
IMAGE_VARIABLE = "$_IMAGE"
# Set when builds clone as a GitHub App; the config must declare them too.
APP_SUBSTITUTIONS = ("_GITHUB_APP_ID", "_GITHUB_APP_INSTALLATION_ID", "_GITHUB_API_URL")
CLONE_STEP = "clone"  # the one step given the app's key
APP_KEY_ENV = "GITHUB_APP_PRIVATE_KEY"
# The step that writes the commit it checked out to $BUILDER_OUTPUT/output (results.buildStepOutputs[its index]).
CHECKOUT_STEP = "checkout"
COMMIT = re.compile(r"^([0-9a-f]{40}|[0-9a-f]{64})$")
_CALL_TIMEOUT_S = 30.0
_PACKAGE = __name__.rpartition(".")[0]
_TAG_CHARS = re.compile(r"[^\w.-]")
_DOCKER_TAG_CHARS = re.compile(r"[^A-Za-z0-9_.-]")


def key_tag(key: str) -> str:
    """The build tag standing for an idempotency key (Cloud Build tags: [\\w][\\w.-]{0,127})."""
    return "relaunch-key-" + hashlib.sha256(key.encode()).hexdigest()[:24]


def sanitize_tag(value: str) -> str:
    """`value` made a valid Cloud Build tag."""
    tag = _TAG_CHARS.sub("-", value)[:128]
    return tag if tag[:1].isalnum() or tag[:1] == "_" else ("p" + tag)[:128]


def run_image_tag(run_id: str) -> str:
    """The docker tag of a run whose commit is unknown until built: run-<id> ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})."""
    tag = "run-" + _DOCKER_TAG_CHARS.sub("-", run_id)
    if tag == "run-" + run_id and len(tag) <= 128:
        return tag
    # Replaced or cut characters could give two runs one tag: a digest of the id keeps them apart.
    return tag[:115] + "-" + hashlib.sha256(run_id.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class CloneApp:
    """The GitHub App builds clone private repositories as: where its key is in Secret Manager, and its ids."""

    key_secret: str  # the secret's name in the build's project; its latest version is read
    app_id: str
    installation_id: int
    api_url: str = "https://api.github.com"

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,255}", self.key_secret):
            raise ValueError(f"CloneApp: key_secret must be a Secret Manager secret's name, got {self.key_secret!r}")
        if not self.app_id or self.installation_id <= 0 or not self.api_url.startswith(("https://", "http://")):
            raise ValueError("CloneApp: app_id, a positive installation_id and an http(s) api_url are required")


class CloudBuildBuilder:
    """An `ImageBuilder` on Cloud Build: one build per key, pushed as `<repository>/<pipeline>:<sha or run-<id>>`."""

    def __init__(
        self,
        project: str,
        region: str,
        *,
        image_repository: str,
        logs_bucket: str | None = None,
        api_endpoint: str | None = None,
        credentials: Any | None = None,
        dockerfile: str | None = None,
        config: str | os.PathLike[str] | None = None,
        service_account: str | None = None,
        clone_app: CloneApp | None = None,
    ) -> None:
        """`clone_app`: clone as this GitHub App (private repositories); None: anonymously."""
        for field, value in (("project", project), ("region", region), ("image_repository", image_repository)):
            if not value or not value.strip():
                raise ValueError(f"CloudBuildBuilder: {field} must not be empty")
        if logs_bucket is not None and not logs_bucket.startswith("gs://"):
            raise ValueError(f"CloudBuildBuilder: logs_bucket must be a gs:// URL, got {logs_bucket!r}")
        if service_account is not None and "@" not in service_account:
            raise ValueError(f"CloudBuildBuilder: service_account must be an email, got {service_account!r}")
        self.service_account = service_account  # None: Cloud Build's default build service account
        self.project = project
        self.region = region
        self.image_repository = image_repository.rstrip("/")
        self.logs_bucket = logs_bucket
        self.dockerfile = dockerfile  # None: the config's _DOCKERFILE default
        self.config_name, self.template = load_build_config(config)
        self.clone_app = clone_app
        if clone_app:
            check_clone_app_config(self.template, self.config_name)
        self._api_endpoint = api_endpoint
        self._credentials = credentials_for(api_endpoint, credentials)  # a loopback stand-in: anonymous
        self._client: Any | None = None

    def __repr__(self) -> str:
        return f"CloudBuildBuilder(project={self.project!r}, region={self.region!r})"

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    def image_for(self, run: PipelineRun) -> str:
        """The tag the run's image is pushed under: its commit, or run-<id> when only the build resolves it."""
        return f"{self.image_repository}/{run.pipeline}:{run.trigger.sha or run_image_tag(run.id)}"

    # -- ImageBuilder -----------------------------------------------------------------------------------------

    def build(self, run: PipelineRun, key: str) -> BuildResult:
        """Start the build once per key; later calls report it: image (with digest) and commit once it succeeded."""
        check_source(run)
        build = self._known(run, key) or self._find(key)
        if build is None:
            return BuildResult(build_id=self._create(run, key))
        image = self._image_of(build, run)
        if image is None:
            return BuildResult(build_id=build.id)
        return BuildResult(build_id=build.id, image=image, sha=self._commit_of(build, run))

    # -- the API calls ----------------------------------------------------------------------------------------

    def _known(self, run: PipelineRun, key: str) -> Any | None:
        """The build recorded on the run, if it is this key's (GetBuild is cheaper and fresher than a list)."""
        if not run.build_id:
            return None
        build = self._call("get_build", {"name": f"{self.parent}/builds/{run.build_id}"})
        return build if key_tag(key) in build.tags else None

    def _find(self, key: str) -> Any | None:
        request = {"parent": self.parent, "filter": f'tags="{key_tag(key)}"', "page_size": 5}
        page = self._call("list_builds", request)
        # The filter is the server's; the tag check keeps a lax filter from handing us someone else's build.
        matches = [b for b in page.builds if key_tag(key) in b.tags]
        return max(matches, key=lambda b: b.create_time) if matches else None

    def _create(self, run: PipelineRun, key: str) -> str:
        operation = self._call("create_build", {"parent": self.parent, "build": self.build_config(run, key)})
        # Do not wait for the long-running operation: the build id is in its metadata from the start.
        build_id: str = operation.metadata.build.id
        if not build_id:
            raise TransientError("Cloud Build returned an operation without a build id")
        return build_id

    def _call(self, method: str, request: dict[str, Any]) -> Any:
        from google.api_core import exceptions as gexc

        try:
            # No client-side retries: a TransientError makes the platform redeliver the command instead.
            return getattr(self.client, method)(request=request, retry=None, timeout=_CALL_TIMEOUT_S)
        except (gexc.TooManyRequests, gexc.ServerError) as exc:
            raise TransientError(f"Cloud Build {method}: {exc.code} {exc.message}") from exc
        except gexc.GoogleAPICallError as exc:
            raise ValueError(f"Cloud Build {method} refused: {exc.code} {exc.message}") from exc
        except OSError as exc:  # connection refused or reset (requests' errors are OSErrors)
            raise TransientError(f"Cloud Build {method}: {exc}") from exc

    @property
    def client(self) -> Any:
        if self._client is None:
            from google.cloud.devtools import cloudbuild_v1

            options = {"api_endpoint": self._api_endpoint} if self._api_endpoint else None
            # REST: the transport the boundary tests exercise, and lighter to import than gRPC.
            self._client = cloudbuild_v1.CloudBuildClient(
                credentials=self._credentials, transport="rest", client_options=options
            )
        return self._client

    # -- what is sent and what comes back ---------------------------------------------------------------------

    def build_config(self, run: PipelineRun, key: str) -> Any:
        """The Build resource for the run's commit (or ref): the config file with the run's substitutions and tags."""
        from google.cloud.devtools import cloudbuild_v1 as cb

        sha, ref, clone_url = run.trigger.sha, run.trigger.ref, run.trigger.clone_url
        if not clone_url:
            raise ValueError(f"run {run.id}: trigger.clone_url is required to build an image")
        if not sha and not ref:
            raise ValueError(f"run {run.id}: trigger.sha or trigger.ref is required to build an image")
        check_source(run)
        build = parse_build(self.template, self.config_name)
        values = {"_CLONE_URL": clone_url, "_SHA": sha or "", "_REF": ref or "", "_IMAGE": self.image_for(run)}
        values["_PR"] = str(run.trigger.pr_number) if run.trigger.pr_number else ""  # a fork's head: refs/pull/N/head
        values |= {"_RELAUNCH_RUN_ID": run.id, "_PIPELINE": run.pipeline}
        if self.dockerfile:
            values["_DOCKERFILE"] = self.dockerfile
        for name, value in values.items():
            build.substitutions[name] = value
        build.tags.extend([t for t in (sanitize_tag(run.pipeline), key_tag(key)) if t not in build.tags])
        if self.clone_app:
            self._give_clone_step_the_app(build)
        if self.service_account:  # least privilege: an account that may push images and write logs, nothing else
            build.service_account = f"projects/{self.project}/serviceAccounts/{self.service_account}"
        logging = cb.BuildOptions.LoggingMode
        if self.logs_bucket:
            build.logs_bucket = self.logs_bucket
            build.options.logging = logging.GCS_ONLY
        elif not build.options.logging:
            # A build without a logs bucket must say where its logs go when it runs as a service account.
            build.options.logging = logging.CLOUD_LOGGING_ONLY
        return build

    def _give_clone_step_the_app(self, build: Any) -> None:
        """The app's key as the clone step's secret env (no other step's), and the ids it mints a token with."""
        from google.cloud.devtools import cloudbuild_v1 as cb

        app = self.clone_app
        assert app is not None
        version = f"projects/{self.project}/secrets/{app.key_secret}/versions/latest"
        build.available_secrets.secret_manager.append(cb.SecretManagerSecret(version_name=version, env=APP_KEY_ENV))
        next(step for step in build.steps if step.id == CLONE_STEP).secret_env.append(APP_KEY_ENV)
        values = (app.app_id, str(app.installation_id), app.api_url.rstrip("/"))
        for name, value in zip(APP_SUBSTITUTIONS, values, strict=True):
            build.substitutions[name] = value

    def _image_of(self, build: Any, run: PipelineRun) -> str | None:
        status = build.status.name
        if status in PENDING:
            return None
        if status in FAILED:
            detail = f": {build.status_detail}" if build.status_detail else ""
            raise ValueError(f"Cloud Build {build.id} {status}{detail} (logs: {build.log_url or 'n/a'})")
        if status != "SUCCESS":
            raise ValueError(f"Cloud Build {build.id} in unexpected status {status}")
        # The image the build was asked for: image_for(run) when it was created. A ref run records its resolved
        # commit after the build, and a redelivered command must still find the run-<id> image it pushed.
        image = build.substitutions.get("_IMAGE") or self.image_for(run)
        name = image.rsplit(":", 1)[0] if ":" in image.rpartition("/")[2] else image
        for pushed in build.results.images:
            if pushed.name in {image, name} and pushed.digest:
                return f"{name}@{pushed.digest}"
        raise ValueError(f"Cloud Build {build.id} succeeded but pushed no {image} (logs: {build.log_url})")

    def _commit_of(self, build: Any, run: PipelineRun) -> str:
        """The commit the build's checkout step reported; it must be the one the run (and the build) named, if any."""
        where = f"Cloud Build {build.id} succeeded but its step {CHECKOUT_STEP!r}"
        ids = [step.id for step in build.steps]
        if CHECKOUT_STEP not in ids:
            raise ValueError(f"{where} is missing, so it reported no commit (logs: {build.log_url})")
        index = ids.index(CHECKOUT_STEP)
        outputs = build.results.build_step_outputs
        sha = (outputs[index] if index < len(outputs) else b"").decode("utf-8", "replace").strip()
        if not COMMIT.match(sha):
            shown = repr(sha[:80]) if sha else "nothing"
            raise ValueError(
                f"{where} (steps[{index}]) output {shown}, not a commit SHA in $BUILDER_OUTPUT/output "
                f"(logs: {build.log_url})"
            )
        named = {run.trigger.sha, build.substitutions.get("_SHA")} - {None, ""}
        if named and named != {sha}:
            raise ValueError(f"{where} checked out {sha}, not the commit the run names ({', '.join(sorted(named))})")
        return sha


def check_source(run: PipelineRun) -> None:
    """Refuse, before a build is submitted, a SHA, ref or clone URL git must not see (permanent: a ValueError)."""
    where = f"run {run.id}: trigger"
    sha, ref, url = run.trigger.sha, run.trigger.ref, run.trigger.clone_url
    if sha and not is_sha(sha):
        raise ValueError(f"{where}.sha {sha[:80]!r} is not a full commit SHA (40 or 64 lower-case hex digits)")
    if ref and (problem := run_ref_problem(ref)):
        raise ValueError(f"{where}.ref {ref[:80]!r} {problem}")
    if url and is_local_url(url):
        raise ValueError(
            f"{where}.clone_url {url[:80]!r} is a path on this machine: file:// clone URLs belong to the embedded "
            "profile; give the pipeline's spec an https or ssh source.clone_url"
        )
    if url and (problem := clone_url_problem(url)):
        raise ValueError(f"{where}.clone_url {problem}")


def load_build_config(path: str | os.PathLike[str] | None = None) -> tuple[str, dict[str, Any]]:
    """(name, content) of a Cloud Build config file, by default the packaged cloudbuild/train-image.yaml."""
    if path is None:
        name, text = CONFIG_NAME, resources.files(_PACKAGE).joinpath(CONFIG_RESOURCE).read_text("utf-8")
    else:
        name, text = os.fspath(path), Path(path).read_text(encoding="utf-8")
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{name}: not valid YAML: {exc}") from exc
    return name, check_build_config(config, name)


def check_build_config(config: Any, name: str) -> dict[str, Any]:
    """`config` if it is a build this module can fill in; else ValueError naming the file and the field."""
    if not isinstance(config, dict):
        raise ValueError(f"{name}: expected a mapping of Build fields, got {type(config).__name__}")
    declared = config.get("substitutions") or {}
    if not isinstance(declared, dict):
        raise ValueError(f"{name}: substitutions: expected a mapping of names to default values")
    missing = [n for n in RUN_SUBSTITUTIONS if n not in declared]
    if missing:
        raise ValueError(f"{name}: substitutions: {', '.join(missing)} not declared (relaunch sets them on each build)")
    if IMAGE_VARIABLE not in (config.get("images") or []):
        raise ValueError(f"{name}: images: must list {IMAGE_VARIABLE}, the image relaunch records for the run")
    if not any(isinstance(s, dict) and s.get("id") == CHECKOUT_STEP for s in config.get("steps") or []):
        raise ValueError(
            f"{name}: steps: no step with id {CHECKOUT_STEP!r} (relaunch reads the commit built from its "
            "$BUILDER_OUTPUT/output)"
        )
    return config


def check_clone_app_config(config: dict[str, Any], name: str) -> None:
    """A config a GitHub App can clone with: a `clone` step to give the key to, and the app's substitutions."""
    missing = [n for n in APP_SUBSTITUTIONS if n not in config["substitutions"]]
    if missing:
        raise ValueError(f"{name}: substitutions: {', '.join(missing)} not declared (set to clone as a GitHub App)")
    if not any(isinstance(s, dict) and s.get("id") == CLONE_STEP for s in config.get("steps") or []):
        raise ValueError(f"{name}: steps: no step with id {CLONE_STEP!r} (the step given the GitHub App's key)")


def parse_build(config: dict[str, Any], name: str) -> Any:
    """A fresh `Build` from the config's fields; an unknown field or enum value is a ValueError naming it."""
    from google.cloud.devtools import cloudbuild_v1 as cb
    from google.protobuf import json_format

    try:
        return cb.Build.from_json(json.dumps(config))
    except json_format.ParseError as exc:
        raise ValueError(f"{name}: {str(exc).splitlines()[0]}") from exc
