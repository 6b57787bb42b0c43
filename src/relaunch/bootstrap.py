"""The one composition root: settings -> adapters -> services. Tests pass fakes through `overrides`.

Nothing is built at import time; each service is built on first use, so a webhook function pays only for the
store and the bus, never for the training or serving adapters.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from relaunch.domain.spec import PipelineSpec, SpecError, load_specs
from relaunch.settings import Settings, reveal

if TYPE_CHECKING:
    from relaunch.adapters.local.stack import EmbeddedStack

log = logging.getLogger(__name__)


class SpecCache:
    """Pipeline specs loaded from a folder, reloaded when a file there changes (looked at most once a second).

    An edit that does not validate never takes a running stack down: the last valid specs keep serving, and
    `problem` says why (logged once per edit, added to every webhook answer, and reported by `relaunch doctor`).
    With no valid specs loaded yet there is nothing to keep serving: the error is raised, and the delivery is kept.
    """

    RECHECK_S = 1.0  # the webhook path asks on every request; a folder listing per request is measurable

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._stamp: tuple[tuple[str, float], ...] | None = None
        self._checked_at = float("-inf")
        self._specs: dict[str, PipelineSpec] | None = None
        self._loaded_at = ""
        self.problem: str | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Mapping[str, PipelineSpec]:
        with self._lock:
            now = time.monotonic()
            if self._specs is not None and now - self._checked_at < self.RECHECK_S:
                return self._specs
            stamp = tuple(sorted((p.name, p.stat().st_mtime) for p in self._dir.glob("*.y*ml")))
            if stamp != self._stamp or self._specs is None:
                self._reload(stamp)
            self._checked_at = now
            assert self._specs is not None
            return self._specs

    def _reload(self, stamp: tuple[tuple[str, float], ...]) -> None:
        try:
            specs = load_specs(self._dir)
        except SpecError as exc:
            if self._specs is None:
                raise  # nothing valid to keep serving
            if stamp != self._stamp:
                self.problem = f"{exc} (serving the last valid specs, loaded at {self._loaded_at})"
                log.warning("pipeline specs in %s do not validate: %s", self._dir, self.problem)
                self._stamp = stamp
            return
        self._specs, self._stamp, self.problem = specs, stamp, None
        self._loaded_at = time.strftime("%Y-%m-%d %H:%M:%S")


class App:
    """Services and adapters for one process, each built on first use."""

    def __init__(self, settings: Settings, overrides: Mapping[str, Any] | None = None) -> None:
        self.settings = settings
        self.__dict__.update(overrides or {})  # a fake given here wins over the cached_property below

    @cached_property
    def specs(self) -> SpecCache:
        return SpecCache(self.settings.pipelines_dir)

    def _project(self) -> str:
        if not self.settings.gcp_project:
            raise ValueError("RELAUNCH_GCP_PROJECT is required by the Google Cloud adapters (see `relaunch doctor`)")
        return self.settings.gcp_project

    @cached_property
    def store(self) -> Any:
        s = self.settings
        if s.adapter("store") == "firestore":
            from relaunch.adapters.gcp.firestore_store import FirestoreRunStore

            return FirestoreRunStore(self._project(), database=s.firestore_database, prefix=s.firestore_prefix)
        from relaunch.adapters.local.sqlite_store import SqliteRunStore

        return SqliteRunStore(s.store_path)

    @cached_property
    def bus(self) -> Any:
        if self.settings.adapter("bus") == "pubsub":
            from relaunch.adapters.gcp.pubsub_bus import PubSubBus

            return PubSubBus(self._project())
        from relaunch.adapters.local.bus import SqliteBus

        return SqliteBus(self.settings.bus_path)

    @cached_property
    def backend(self) -> Any:
        s = self.settings
        kind = s.adapter("training")
        if kind == "vertex":
            from relaunch.adapters.gcp.vertex_training import VertexTrainingBackend

            return VertexTrainingBackend(
                self._project(),
                s.gcp_region,
                service_account=s.vertex_service_account,
                api_endpoint=s.vertex_api_endpoint,
            )
        if kind == "wandb":
            from relaunch.adapters.wandb.launch import WandbLaunchBackend

            return WandbLaunchBackend(
                api_key=reveal(s.wandb_api_key) or "",
                base_url=s.wandb_base_url,
                entity=s.wandb_entity or "",
                project=s.wandb_project or "",
                queue=s.wandb_launch_queue or "",
            )
        from relaunch.adapters.local.agent import LocalAgent

        return LocalAgent(s.agent_path, s.logs_dir, max_concurrent=s.max_concurrent_jobs)

    @cached_property
    def registry(self) -> Any:
        s = self.settings
        if s.adapter("registry") == "vertex":
            from relaunch.adapters.gcp.vertex_registry import VertexRegistry

            return VertexRegistry(
                self._project(), s.gcp_region, serving_image=s.vertex_serving_image, api_endpoint=s.vertex_api_endpoint
            )
        from relaunch.adapters.local.registry import LocalRegistry

        return LocalRegistry(s.registry_dir)

    @cached_property
    def endpoint(self) -> Any:
        s = self.settings
        if s.adapter("endpoint") == "vertex":
            from relaunch.adapters.gcp.vertex_endpoint import VertexEndpoint

            return VertexEndpoint(
                self._project(),
                s.gcp_region,
                machine_type=s.vertex_endpoint_machine_type,
                api_endpoint=s.vertex_api_endpoint,
            )
        from relaunch.adapters.local.endpoint import TOKEN_FILE, HttpEndpoint

        return HttpEndpoint(s.endpoint_url, token_path=s.secrets_dir / TOKEN_FILE)

    @cached_property
    def builder(self) -> Any:
        s = self.settings
        if s.adapter("builder") == "cloudbuild":
            from relaunch.adapters.gcp.cloudbuild import CloudBuildBuilder

            return CloudBuildBuilder(
                self._project(),
                s.gcp_region,
                image_repository=s.image_repository or "",
                logs_bucket=s.build_logs_bucket,
                api_endpoint=s.cloudbuild_api_endpoint,
                service_account=s.build_service_account,
            )
        from relaunch.adapters.local.builder import GitCheckoutBuilder

        return GitCheckoutBuilder(s.workspaces_dir)

    @property
    def artifact_root(self) -> str:
        """Where runs write models and evaluations: a gs:// prefix on GCP, the stack's folder locally."""
        return self.settings.artifact_root or str(self.settings.artifacts_dir.resolve())

    @cached_property
    def blobs(self) -> Any:
        if self.artifact_root.startswith("gs://"):
            from relaunch.adapters.gcp.gcs_blobs import GcsBlobStore

            return GcsBlobStore(project=self.settings.gcp_project)
        from relaunch.adapters.local.blobs import LocalBlobStore

        return LocalBlobStore()

    @cached_property
    def notifier(self) -> Any:
        """The timeline always (`relaunch runs show` reads it), plus GitHub and Slack when configured."""
        from relaunch.adapters.fanout import FanoutNotifier
        from relaunch.adapters.local.notifier import TimelineNotifier

        s = self.settings
        notifiers: list[Any] = [TimelineNotifier(self.store)]
        token = reveal(s.github_token)
        if token:
            from relaunch.adapters.github.notifier import GitHubNotifier

            notifiers.append(
                GitHubNotifier(
                    token, base_url=s.github_api_url, app_token=s.github_token_is_app, public_url=s.public_url
                )
            )
        slack = reveal(s.slack_webhook_url)
        if slack:
            from relaunch.adapters.slack import SlackNotifier

            notifiers.append(SlackNotifier(slack))
        return FanoutNotifier(notifiers) if len(notifiers) > 1 else notifiers[0]

    @cached_property
    def artifacts(self) -> Any:
        if self.settings.adapter("artifacts") == "wandb":
            from relaunch.adapters.wandb.artifacts import WandbArtifacts

            key = reveal(self.settings.wandb_api_key) or ""
            return WandbArtifacts(api_key=key, base_url=self.settings.wandb_base_url)
        from relaunch.adapters.local.artifacts import LocalArtifacts

        return LocalArtifacts(self.settings.wandb_artifacts_dir)

    @cached_property
    def ingest(self) -> Any:
        from relaunch.service.ingest import IngestService

        specs = self.specs
        return IngestService(
            self.store,
            self.bus,
            specs,
            promote_alias=self.settings.wandb_promote_alias,
            spec_problem=lambda: getattr(specs, "problem", None),
        )

    @cached_property
    def permissions(self) -> Any:
        """Who may approve a fork's run: GitHub's answer when a token is configured, else nobody (CLI only)."""
        token = reveal(self.settings.github_token)
        if token:
            from relaunch.adapters.github.permissions import GitHubPermissions

            return GitHubPermissions(token, base_url=self.settings.github_api_url)
        from relaunch.adapters.local.permissions import NobodyPermissions

        return NobodyPermissions()

    @cached_property
    def history(self) -> Any:
        """How two commits stand: git from a local cache, or GitHub's compare API (the token is optional for public
        repositories, where GitHub allows a few dozen anonymous requests an hour)."""
        if self.settings.adapter("history") == "github":
            from relaunch.adapters.github.history import GitHubHistory

            return GitHubHistory(reveal(self.settings.github_token), base_url=self.settings.github_api_url)
        from relaunch.adapters.local.history import LocalGitHistory

        return LocalGitHistory(self.settings.workspaces_dir / ".history")

    @cached_property
    def orchestrator(self) -> Any:
        from relaunch.service.orchestrator import Deps, Orchestrator

        deps = Deps(
            store=self.store,
            builder=self.builder,
            backend=self.backend,
            blobs=self.blobs,
            registry=self.registry,
            endpoint=self.endpoint,
            notifier=self.notifier,
            specs=self.specs,
            artifact_root=self.artifact_root,
            artifacts=lambda: self.artifacts,
            promote_alias=self.settings.wandb_promote_alias,
            permissions=self.permissions,
            history=self.history,
        )
        return Orchestrator(deps)


_app: App | None = None
_app_lock = threading.Lock()


def app() -> App:
    """This process's App, built from the environment on first call."""
    global _app
    with _app_lock:
        if _app is None:
            _app = App(Settings())
        return _app


def use(custom: App | None) -> None:
    """Install (or with None, forget) the process-wide App; for tests and the embedded stack."""
    global _app
    with _app_lock:
        _app = custom


def with_local_secrets(settings: Settings) -> Settings:
    """The settings with the embedded stack's own webhook secrets (files in its home) where none is configured."""
    from relaunch.adapters.local.stack import with_local_secrets as fill

    return fill(settings)


def embedded_stack(settings: Settings) -> EmbeddedStack:
    """The embedded stack (functions, bus, agent, endpoint) for these settings, not yet started."""
    from relaunch.adapters.local.stack import EmbeddedStack

    return EmbeddedStack(settings)
