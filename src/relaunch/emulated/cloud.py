"""Google Cloud on one machine, for the gcp-emulated demo: the official emulators and relaunch's stand-ins, together.

Pub/Sub and Firestore are Google's own emulators (gcloud); Cloud Storage, Cloud Build, Vertex AI, GitHub, Slack and
W&B are the stand-ins of this package. They are wired to each other as the real services are: Cloud Build's image is the
folder a Vertex job runs in, a job's gs:// folders are files under the Cloud Storage stand-in's root (its /gcs/
mount), Cloud Build publishes each build's status on `cloud-builds`, and a finished Vertex job's service log entry is
published on the job sink's topic, as Cloud Logging's sink does. `env` is what points the SDKs at all of it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relaunch.adapters.local.gcloud_emulators import Emulator, start
from relaunch.domain.commands import BUILDS_TOPIC
from relaunch.emulated.cloudbuild import FakeCloudBuild, LocalBuilds, serve
from relaunch.emulated.gcs import FakeGcs, GcsServer
from relaunch.emulated.github import FakeGitHub
from relaunch.emulated.github import serve as serve_github
from relaunch.emulated.slack import FakeSlack, serve_slack
from relaunch.emulated.vertex import FakeVertex, VertexServer
from relaunch.emulated.vertex_runner import JobRunner
from relaunch.emulated.wandb import FakeWandb
from relaunch.emulated.wandb import serve as serve_wandb
from relaunch.triggers.vertex_jobs import JOB_RESOURCE, SERVICE_TASK

Publish = Callable[[str, dict[str, Any], dict[str, str]], object]


@dataclass
class EmulatedCloud:
    """Everything started by `start()` and stopped by `stop()`; `sources` maps clone URLs to local repositories."""

    work: Path
    project: str
    sources: Mapping[str, str]
    job_topic: str
    github_token: str = field(default_factory=lambda: secrets.token_hex(20))
    wandb_api_key: str = field(default_factory=lambda: secrets.token_hex(20))  # 40 characters, as W&B's keys
    emulators: list[Emulator] = field(default_factory=list)
    gcs: FakeGcs | None = None
    build: FakeCloudBuild | None = None
    vertex: FakeVertex | None = None
    github: FakeGitHub | None = None
    slack: FakeSlack | None = None
    wandb: FakeWandb | None = None
    publish: Publish | None = None  # set once Pub/Sub is wired (LocalDeployment.bus.publish)
    _stack: ExitStack = field(default_factory=ExitStack)

    def start(self) -> EmulatedCloud:
        """Start the emulators, then the stand-ins; on failure stop what started."""
        try:
            for kind in ("pubsub", "firestore"):
                emulator = start(kind, project=self.project)
                self._stack.callback(emulator.stop)
                self.emulators.append(emulator)
            self.gcs = self._stack.enter_context(GcsServer(self.work / "gcs"))
            builds = LocalBuilds(self.work / "images", sources=self.sources)
            self.build = self._stack.enter_context(serve(executor=builds, on_status=self._build_status))
            runner = JobRunner(image_folder=self.build.image_folder)
            fake = FakeVertex(runner=runner, storage_root=self.gcs.root, on_job_end=self._job_ended)
            self.vertex = self._stack.enter_context(VertexServer(fake))
            self._stack.callback(fake.stop)
            self.github = self._stack.enter_context(serve_github(self.github_token))
            self.slack = self._stack.enter_context(serve_slack())
            self.wandb = self._stack.enter_context(serve_wandb(self.wandb_api_key))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self.publish = None
        self._stack.close()

    @property
    def env(self) -> dict[str, str]:
        """Where the SDKs find each service (emulator hosts, API endpoints), for the functions and the demo."""
        assert self.gcs and self.build and self.vertex and self.github and self.wandb, "start() first"
        hosts = {k: v for emulator in self.emulators for k, v in emulator.env.items()}
        return {
            **hosts,
            "STORAGE_EMULATOR_HOST": self.gcs.url,  # google-cloud-storage's own switch (anonymous, this host)
            "RELAUNCH_VERTEX_API_ENDPOINT": self.vertex.url,
            "RELAUNCH_CLOUDBUILD_API_ENDPOINT": self.build.url,
            "RELAUNCH_GITHUB_API_URL": self.github.url,
            "RELAUNCH_WANDB_BASE_URL": self.wandb.url,
            **self._wandb_sandbox(),
            "GOOGLE_CLOUD_PROJECT": self.project,
            "CLOUDSDK_CONFIG": str(self.work / "gcloud"),  # never this machine's own gcloud configuration
        }

    def _wandb_sandbox(self) -> dict[str, str]:
        """The wandb SDK's folders and credentials in the work folder, never this machine's (~/.config/wandb, ~/.netrc),
        and no crash report leaves the machine."""
        home = self.work / "wandb"
        folders = ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR")
        env = {name: str(home / name.removeprefix("WANDB_").lower()) for name in folders}
        return {**env, "NETRC": str(home / "netrc"), "WANDB_ERROR_REPORTING": "false", "WANDB_SILENT": "true"}

    def create_bucket(self, name: str) -> None:
        """Deploy's `gcloud storage buckets create`: the bucket's folder under the Cloud Storage stand-in's root."""
        assert self.gcs is not None, "start() first"
        (self.gcs.root / name).mkdir(parents=True, exist_ok=True)

    def refused(self) -> list[str]:
        """Every request a stand-in refused because the published API description does not allow it."""
        found = [f"cloud build: {p}" for problems in (self.build.refused if self.build else []) for p in problems]
        found += [f"cloud storage: {p}" for p in (self.gcs.refused if self.gcs else [])]
        found += [f"vertex ai: {p}" for p in (self.vertex.refused if self.vertex else [])]
        found += [f"github: {p}" for p in (self.github.refused if self.github else [])]
        found += [f"w&b: {p}" for p in (self.wandb.refused if self.wandb else [])]
        return found

    def _build_status(self, build: dict[str, Any]) -> None:
        """Cloud Build's part: every status change on `cloud-builds`, the Build as data, id and status attributes."""
        if self.publish is not None:
            self.publish(BUILDS_TOPIC, build, {"buildId": str(build["id"]), "status": str(build["status"])})

    def _job_ended(self, job: dict[str, Any]) -> None:
        """Cloud Logging's sink: the job's service log entry (resource ml_job, task service) on the job topic."""
        if self.publish is not None:
            self.publish(self.job_topic, service_log_entry(job, self.project), {})


def service_log_entry(job: dict[str, Any], project: str) -> dict[str, Any]:
    """The LogEntry Vertex writes when a CustomJob ends, as a sink forwards it (shape: triggers/vertex_jobs.py)."""
    job_id = str(job["name"]).rsplit("/", 1)[-1]
    ended = job.get("endTime") or job.get("updateTime") or job.get("createTime")
    message = "Job completed successfully." if job.get("state") == "JOB_STATE_SUCCEEDED" else "Job failed."
    labels = {"job_id": job_id, "project_id": project, "task_name": SERVICE_TASK}
    return {
        "insertId": secrets.token_hex(6),
        "jsonPayload": {"message": message, "levelname": "INFO"},
        "resource": {"type": JOB_RESOURCE, "labels": labels},
        "timestamp": ended,
        "severity": "INFO",
        "logName": f"projects/{project}/logs/ml.googleapis.com%2F{job_id}",
    }
