"""The one composition root: settings -> adapters -> services. Tests pass fakes through `overrides`.

Nothing is built at import time; each service is built on first use, so a webhook function pays only for the
store and the bus, never for the training or serving adapters.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING

from relaunch.bootstrap import reporting
from relaunch.settings import Settings, reveal

if TYPE_CHECKING:
    from relaunch.adapters.gcp.pubsub_bus import PubSubBus
    from relaunch.adapters.local.stack import EmbeddedStack as EmbeddedStack  # demo.py names it through here
    from relaunch.adapters.local.stack import StackBus
    from relaunch.domain.model import JobRequest, JobStatus
    from relaunch.domain.ports import (
        ArtifactSource,
        Background,
        BlobStore,
        Bus,
        CommitHistory,
        Endpoint,
        EnvironmentPruning,
        ImageBuilder,
        LocalServer,
        ModelRegistry,
        Notifier,
        RepoPermissions,
        RunStore,
        TrainingBackend,
    )
    from relaunch.domain.story import StorySource
    from relaunch.service.check_run_step import CheckRunUpdates
    from relaunch.service.ingest import IngestService
    from relaunch.service.orchestrator import Orchestrator
    from relaunch.service.spec_cache import SpecCache


class App:
    """Services and adapters for one process, each built on first use; an adapter is typed as the port it implements."""

    def __init__(self, settings: Settings, overrides: Mapping[str, object] | None = None) -> None:
        """`overrides` replace services by name (tests pass fakes); a name that is no service is a TypeError."""
        self.settings = settings
        given = dict(overrides or {})
        unknown = ", ".join(repr(name) for name in sorted(set(given) - set(self.services())))
        if unknown:  # a misspelt name would leave the real adapter in place, and a test passing for the wrong reason
            raise TypeError(f"App has no service {unknown} to override (services: {', '.join(self.services())})")
        for name, service in given.items():
            setattr(self, name, service)  # the instance's value wins over the cached_property of that name

    @classmethod
    def services(cls) -> tuple[str, ...]:
        """The names of the services an App builds on first use, and that `overrides` may replace."""
        return tuple(sorted(name for name, member in vars(cls).items() if isinstance(member, cached_property)))

    @cached_property
    def specs(self) -> SpecCache:
        from relaunch.service.spec_cache import SpecCache

        return SpecCache(self.settings.pipelines_dir, compiled=self.settings.home / "cache" / "pipelines.pickle")

    def _project(self) -> str:
        if not self.settings.gcp_project:
            raise ValueError("RELAUNCH_GCP_PROJECT is required by the Google Cloud adapters (see `relaunch doctor`)")
        return self.settings.gcp_project

    @cached_property
    def store(self) -> RunStore:
        s = self.settings
        if s.adapter("store") == "firestore":
            from relaunch.adapters.gcp.firestore_store import FirestoreRunStore

            return FirestoreRunStore(self._project(), database=s.firestore_database, prefix=s.firestore_prefix)
        from relaunch.adapters.local.sqlite_inbox import outbox_for
        from relaunch.adapters.local.sqlite_store import SqliteRunStore

        given = vars(self).get("bus")  # a bus a test gave, or built already
        return SqliteRunStore(s.store_path, outbox_for(s.adapter("bus"), given, s.bus_path, s.pubsub_commands_topic))

    @cached_property
    def bus(self) -> Bus:
        if self.settings.adapter("bus") == "pubsub":
            from relaunch.adapters.gcp.pubsub_bus import PubSubBus

            return PubSubBus(self._project())
        from relaunch.adapters.local.bus import SqliteBus

        return SqliteBus(self.settings.bus_path)

    @cached_property
    def backend(self) -> TrainingBackend:
        s = self.settings
        kind = s.adapter("training")
        if kind == "vertex":
            from relaunch.adapters.gcp.vertex_training import VertexTrainingBackend

            account, api = s.vertex_service_account, s.vertex_api_endpoint
            return VertexTrainingBackend(self._project(), s.gcp_region, service_account=account, api_endpoint=api)
        if kind == "wandb":
            from relaunch.adapters.wandb.launch import WandbLaunchBackend

            return WandbLaunchBackend(
                api_key=reveal(s.wandb_api_key) or "",
                base_url=s.wandb_base_url,
                entity=s.wandb_entity or "",
                project=s.wandb_project or "",
                queue=s.wandb_launch_queue or "",
                staging_bucket=s.wandb_staging_bucket or "",
            )
        from relaunch.adapters.local.agent import LocalAgent

        return LocalAgent(s.agent_path, s.logs_dir, max_concurrent=s.max_concurrent_jobs)

    @cached_property
    def training(self) -> TrainingBackend:
        """What the orchestrator trains with: the backend's jobs and its sweeps (relaunch.bootstrap.training)."""
        from relaunch.bootstrap.training import with_sweeps

        return with_sweeps(self.settings.adapter("training"), self.backend, self.settings.home / "sweeps")

    @cached_property
    def registry(self) -> ModelRegistry:
        s = self.settings
        if s.adapter("registry") == "vertex":
            from relaunch.adapters.gcp.vertex_registry import VertexRegistry

            return VertexRegistry(
                self._project(), s.gcp_region, serving_image=s.vertex_serving_image, api_endpoint=s.vertex_api_endpoint
            )
        from relaunch.adapters.local.registry import LocalRegistry

        return LocalRegistry(s.registry_dir)

    @cached_property
    def endpoint(self) -> Endpoint:
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
    def builder(self) -> ImageBuilder:
        s = self.settings
        if s.adapter("builder") == "cloudbuild":
            from relaunch.adapters.gcp.cloudbuild import CloneApp, CloudBuildBuilder

            key, app_id, installation = s.build_github_app_key_secret, s.github_app_id, s.github_app_installation_id
            # Settings refuses the key's secret without the App's ids; CloneApp refuses them empty.
            clone_app = CloneApp(key, app_id or "", installation or 0, s.github_api_url) if key else None
            return CloudBuildBuilder(
                self._project(),
                s.gcp_region,
                image_repository=s.image_repository or "",
                logs_bucket=s.build_logs_bucket,
                api_endpoint=s.cloudbuild_api_endpoint,
                service_account=s.build_service_account,
                clone_app=clone_app,
            )
        from relaunch.adapters.local.builder import GitCheckoutBuilder
        from relaunch.adapters.local.pyenv import PythonEnvironments

        return GitCheckoutBuilder(s.workspaces_dir, PythonEnvironments(s.envs_dir))

    @property
    def artifact_root(self) -> str:
        """Where runs write models and evaluations: a gs:// prefix on GCP, the stack's folder locally."""
        return self.settings.artifact_root or str(self.settings.artifacts_dir.resolve())

    @cached_property
    def blobs(self) -> BlobStore:
        if self.artifact_root.startswith("gs://"):
            from relaunch.adapters.gcp.gcs_blobs import GcsBlobStore

            return GcsBlobStore(project=self.settings.gcp_project)
        from relaunch.adapters.local.blobs import LocalBlobStore

        return LocalBlobStore()

    @cached_property
    def notifier(self) -> Notifier:
        """The timeline always (`relaunch runs show` reads it), plus GitHub and Slack when configured."""
        return reporting.notifier(self.settings, self.store)

    @cached_property
    def permissions(self) -> RepoPermissions:
        """Who may approve a fork's run: GitHub's answer when a token is configured, else nobody (CLI only)."""
        return reporting.permissions(self.settings)

    @cached_property
    def check_runs(self) -> CheckRunUpdates | None:
        """Who updates the gate check run's buttons: the GitHub App, else nobody (only an App makes check runs)."""
        return reporting.check_runs(self.settings)

    @cached_property
    def history(self) -> CommitHistory:
        """How two commits stand: git from a local cache, or GitHub's compare API."""
        return reporting.history(self.settings)

    @cached_property
    def apply_launch_queue(self) -> Callable[[dict[str, object]], str]:
        """Create or update the W&B Launch queue from a Vertex resource config (`relaunch launch-queue apply`)."""
        from relaunch.adapters.wandb.launch_queue import LaunchQueue

        s = self.settings
        key, entity, name = reveal(s.wandb_api_key) or "", s.wandb_entity or "", s.wandb_launch_queue or ""
        return LaunchQueue(api_key=key, base_url=s.wandb_base_url, entity=entity, name=name).apply

    @cached_property
    def artifacts(self) -> ArtifactSource:
        if self.settings.adapter("artifacts") == "wandb":
            from relaunch.adapters.wandb.artifacts import WandbArtifacts

            key = reveal(self.settings.wandb_api_key) or ""
            cloud = None
            if self.artifact_root.startswith("gs://"):  # fetches land in the run's folder the evaluation job reads
                from relaunch.adapters.gcp.gcs_blobs import GcsBlobStore

                cloud = GcsBlobStore(project=self.settings.gcp_project)
            return WandbArtifacts(api_key=key, base_url=self.settings.wandb_base_url, cloud=cloud)
        from relaunch.adapters.local.artifacts import LocalArtifacts

        return LocalArtifacts(self.settings.wandb_artifacts_dir)

    @cached_property
    def ingest(self) -> IngestService:
        from relaunch.service.ingest import IngestService

        specs = self.specs
        return IngestService(
            self.store,
            self.bus,
            specs,
            promote_alias=self.settings.wandb_promote_alias,
            spec_problem=lambda: getattr(specs, "problem", None),
            commands_topic=self.settings.pubsub_commands_topic,
        )

    @cached_property
    def orchestrator(self) -> Orchestrator:
        from relaunch.service.orchestrator import Deps, Orchestrator
        from relaunch.service.rollout_looks import RolloutLooks

        s = self.settings
        deps = Deps(
            store=self.store,
            builder=self.builder,
            backend=self.training,
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
            look_at=RolloutLooks(lambda: self.bus, s.pubsub_commands_topic, bus_delays=s.adapter("bus") != "pubsub"),
            check_runs=self.check_runs,
            tracking=reporting.tracking_sync(s),
        )
        return Orchestrator(deps)

    # -- what the embedded stack's supervisor runs beside its functions (adapters/local/stack.py starts and stops it)

    def endpoint_server(self, host: str, port: int = 0) -> LocalServer:
        """The local serving endpoint on `port` (0: one the OS picks when it starts); its state lives in the stack's
        home."""
        from relaunch.adapters.local.endpoint_server import EndpointServer

        s = self.settings  # a version names the environment it was trained in: served with it, from envs_dir
        return EndpointServer(s.endpoint_state_path, host=host, port=port, envs_dir=s.envs_dir, warm_ahead=True)

    def stack_bus(self, routes: Mapping[str, tuple[str, str]]) -> StackBus:
        """The bus the settings choose, pushing each topic of `routes` (function name -> (topic, URL)) to its function,
        as Eventarc's triggers do on GCP."""
        from relaunch.adapters.local.stack import StackBus

        if self.settings.adapter("bus") == "pubsub":
            bus = self._pubsub_routes(routes)
            return StackBus(bus, dispatcher=None, close=bus.close)
        from relaunch.adapters.local.bus import SqliteBus
        from relaunch.adapters.local.bus_dispatcher import BusDispatcher

        local = SqliteBus(self.settings.bus_path)
        for name, (topic, url) in routes.items():
            local.subscribe(name, topic, url)
        return StackBus(local, dispatcher=BusDispatcher(self.settings.bus_path), close=None)

    def _pubsub_routes(self, routes: Mapping[str, tuple[str, str]]) -> PubSubBus:
        """Pub/Sub (the emulator, or a real project) with a topic and a push subscription per route."""
        from relaunch.adapters.gcp.pubsub_bus import PubSubBus

        if not self.settings.gcp_project:
            raise ValueError("gcp_project: RELAUNCH_GCP_PROJECT is required when RELAUNCH_BUS=pubsub")
        bus = PubSubBus(self.settings.gcp_project)
        try:
            for name, (topic, url) in routes.items():
                bus.ensure_topic(topic)
                bus.ensure_push_subscription(f"relaunch-{name.replace('_', '-')}", topic, url)
        except BaseException:
            bus.close()
            raise
        return bus

    def prunable_environments(self) -> EnvironmentPruning | None:
        """The local build's environments for housekeeping: only this stack's own (a shared folder serves others)."""
        s = self.settings
        if s.adapter("builder") != "local" or s.home.resolve() not in s.envs_dir.resolve().parents:
            return None
        from relaunch.adapters.local.pyenv import PrunableEnvironments

        return PrunableEnvironments(s.envs_dir, s.workspaces_dir)

    def story_feed(self) -> StorySource | None:
        """What `relaunch up` follows: deliveries and timeline entries after a cursor (None: a store not SQLite)."""
        from relaunch.adapters.local.sqlite_store import SqliteRunStore, StoryFeed

        return StoryFeed(self.store) if isinstance(self.store, SqliteRunStore) else None

    def agent_process(self) -> Background:
        """The local agent in a process of its own, holding no secret (its jobs run code any push brought)."""
        from relaunch.adapters.local.agent_process import AgentProcess

        return AgentProcess.for_settings(self.settings)

    def completion_relay(self, bus: Bus) -> Background:
        """Publishes JobFinished for each job the agent finished: the agent holds no credential, not even the bus's."""
        from relaunch.adapters.local.agent import LocalAgent
        from relaunch.adapters.local.agent_process import CompletionRelay

        s = self.settings
        completions = LocalAgent(s.agent_path, s.logs_dir, max_concurrent=s.max_concurrent_jobs)
        completions.on_finished = job_finished_publisher(bus, s)
        return CompletionRelay(completions)


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
    from relaunch.adapters.local.state_folder import with_local_secrets as fill

    return fill(settings)


def embedded_stack(settings: Settings, functions: tuple[str, ...] | None = None) -> EmbeddedStack:
    """The embedded stack (functions, bus, agent, endpoint) for these settings, not yet started; all functions by
    default. Its supervisor asks an App for its settings what runs beside the functions (see App.endpoint_server)."""
    from relaunch.adapters.local.stack import FUNCTIONS, EmbeddedStack

    return EmbeddedStack(settings, App, functions=FUNCTIONS if functions is None else functions)


def job_finished_publisher(bus: Bus, settings: Settings) -> Callable[[JobRequest, JobStatus], None]:
    """What the agent's completion relay calls for a finished job: a JobFinished on the configured commands topic."""
    from relaunch.domain.commands import JobFinished

    def on_finished(request: JobRequest, status: JobStatus) -> None:
        command = JobFinished(run_id=request.run_id, step=request.step, job_id=status.id, state=status.state)
        bus.publish(settings.pubsub_commands_topic, command.model_dump(), {"run_id": request.run_id})

    return on_finished
