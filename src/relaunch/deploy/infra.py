"""Typed models of `triggers/relaunch.yaml`: the Google Cloud infrastructure the functions need, declared.

Loading validates each table's shape (unknown keys are errors), then the cross-references between tables
(`crosscheck.py`); every error names the file and the field.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from relaunch.deploy.validators import check_cron, check_iap_member, check_time_zone
from relaunch.domain.commands import COMMANDS_TOPIC, DRIFT_TOPIC, RECONCILE_TOPIC, SCHEDULE_TOPIC, VERTEX_JOBS_TOPIC
from relaunch.triggers.vertex_jobs import SINK_FILTER

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,61}[a-z0-9]$")]
SecretName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,255}$", description="A Secret Manager secret's name")]
TopicName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9._~%+-]{2,254}$")]
Role = Annotated[
    str, Field(pattern=r"^roles/[A-Za-z0-9_.]+$", description="A named IAM role, e.g. roles/pubsub.publisher")
]
EnvName = Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")]
Cron = Annotated[str, AfterValidator(check_cron), Field(description="unix-cron: minute hour day month weekday")]
TimeZone = Annotated[str, AfterValidator(check_time_zone)]
IapMember = Annotated[
    str,
    AfterValidator(check_iap_member),
    Field(description="user:EMAIL, group:EMAIL, serviceAccount:EMAIL or domain:DOMAIN"),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PrefixRole(_Strict):
    """A role on a declared bucket that holds only for the objects under `prefix` (an IAM condition)."""

    bucket: str = Field(description="A declared bucket's name")
    prefix: str = Field(pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*/$", description="Object prefix, ending in /")
    role: Role
    title: str = Field(pattern=r"^[a-z][a-z0-9-]{0,99}$", description="The condition's title (unique per binding)")

    def expression(self) -> str:
        """The CEL condition: objects under the prefix (a bucket-level listing check has no object name)."""
        return f'resource.name.startsWith("projects/_/buckets/{self.bucket}/objects/{self.prefix}")'


class ServiceAccount(_Strict):
    """An identity the functions, their triggers or training jobs run as, with the roles it needs and no more."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$", description="Account id: NAME@PROJECT.iam...")
    display_name: str = Field(min_length=1, max_length=100, description="Shown in the console")
    roles: list[Role] = Field(default_factory=list, description="Roles granted on the project")
    bucket_roles: dict[str, list[Role]] = Field(
        default_factory=dict, description="Roles granted on declared buckets only: bucket name -> roles"
    )
    act_as: list[str] = Field(
        default_factory=list, description="Declared accounts it may run work as (roles/iam.serviceAccountUser on them)"
    )
    prefix_roles: list[PrefixRole] = Field(
        default_factory=list, description="Roles on a declared bucket limited by an IAM condition to one object prefix"
    )
    no_secret_access: bool = Field(
        default=False, description="Deploy checks the account holds no Secret Manager role (jobs that run user code)"
    )
    secrets: list[SecretName] = Field(
        default_factory=list,
        description="Secrets it reads itself (secretAccessor on each alone), e.g. the GitHub App key image builds use",
    )

    @model_validator(mode="after")
    def _secrets_only_if_allowed(self) -> ServiceAccount:
        if self.no_secret_access and self.secrets:
            raise ValueError("secrets: an account with no_secret_access reads no secret")
        return self


class Bucket(_Strict):
    """A Cloud Storage bucket (models, evaluations), created with uniform bucket-level access."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$", description="Bucket name, without gs://")
    location: str | None = Field(default=None, description="Bucket location (default: the region)")


class Storage(_Strict):
    """Where runs keep their state, models and images."""

    buckets: list[Bucket] = Field(default_factory=list, description="Buckets to create")
    firestore_database: str | None = Field(
        default="(default)", description="Firestore (native mode) database of the run store; null: not managed"
    )
    image_repository: Name | None = Field(
        default=None, description="Artifact Registry docker repository (in the region) for training images"
    )


class Topic(_Strict):
    """A Pub/Sub topic."""

    name: TopicName


class Subscription(_Strict):
    """A pull subscription you read yourself, e.g. to keep and inspect a dead-letter topic's messages."""

    name: TopicName
    topic: TopicName = Field(description="A declared topic")
    retention_days: int = Field(default=7, ge=1, le=31, description="How long unacknowledged messages are kept")
    ack_deadline_s: int = Field(default=60, ge=10, le=600)


class DeadLetter(_Strict):
    """Where a message goes after it failed `max_delivery_attempts` times."""

    topic: TopicName = Field(description="A declared topic, other than the trigger's own")
    max_delivery_attempts: int = Field(default=10, ge=5, le=100)


class RetryPolicy(_Strict):
    """Pub/Sub's exponential backoff between redeliveries."""

    min_backoff_s: int = Field(default=10, ge=0, le=600)
    max_backoff_s: int = Field(default=600, ge=0, le=600)

    @model_validator(mode="after")
    def _ordered(self) -> RetryPolicy:
        if self.min_backoff_s > self.max_backoff_s:
            raise ValueError("min_backoff_s is larger than max_backoff_s")
        return self


class Function(_Strict):
    """One Cloud Function (2nd gen) serving one of relaunch's entry points."""

    name: Name = Field(description="Deployed name (also its Cloud Run service's name)")
    entry_point: str = Field(description="A name in relaunch.functions.main.ENTRY_POINTS")
    trigger: Literal["http", "pubsub"] = Field(description="http: a webhook URL; pubsub: one entry in triggers")
    service_account: str = Field(description="A declared service account the function runs as")
    env: dict[EnvName, str] = Field(default_factory=dict, description="Environment of this function only")
    secrets: dict[EnvName, SecretName] = Field(
        default_factory=dict, description="Environment variable -> Secret Manager secret name (version: latest)"
    )
    publishes: list[TopicName] = Field(default_factory=list, description="Declared topics it publishes to")
    memory: str = Field(default="512Mi", pattern=r"^[0-9]+(Ki|Mi|Gi|K|M|G)$")
    timeout_s: int = Field(default=60, ge=1, le=3600)
    min_instances: int = Field(default=0, ge=0, le=100)
    max_instances: int = Field(default=10, ge=1, le=1000)


class Trigger(_Strict):
    """The Eventarc trigger of a Pub/Sub function, and its subscription's retry and dead-letter policies."""

    function: Name = Field(description="A declared function with trigger: pubsub")
    topic: TopicName = Field(description="A declared topic")
    service_account: str = Field(description="A declared service account Eventarc invokes the function as")
    retry: bool = Field(default=True, description="Redeliver on failure (the function raises only when retrying helps)")
    retry_policy: RetryPolicy | None = Field(default=None, description="Backoff between redeliveries (retry only)")
    dead_letter: DeadLetter | None = Field(default=None, description="Dead-letter policy (retry only)")


class PipelineSchedule(_Strict):
    """A Cloud Scheduler job that retrains one pipeline (a tick on the schedule topic naming it)."""

    job: str = Field(pattern=r"^[A-Za-z0-9_-]{1,500}$", description="Cloud Scheduler job name")
    pipeline: str = Field(description="A pipeline in the pipelines folder")
    schedule: Cron
    time_zone: TimeZone = "Etc/UTC"
    reason: str = Field(default="scheduled retrain", min_length=1, max_length=300)
    topic: TopicName = SCHEDULE_TOPIC


class ReconcileSchedule(_Strict):
    """The Cloud Scheduler job whose ticks run `reconcile`."""

    job: str = Field(default="relaunch-reconcile", pattern=r"^[A-Za-z0-9_-]{1,500}$")
    schedule: Cron = "* * * * *"
    time_zone: TimeZone = "Etc/UTC"
    topic: TopicName = RECONCILE_TOPIC


class DriftSink(_Strict):
    """The log sink that routes Vertex AI Model Monitoring anomalies to the drift topic."""

    name: str = Field(default="relaunch-model-monitoring", pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    topic: TopicName = DRIFT_TOPIC
    log_filter: str | None = Field(
        default=None, description="Default: the project's model_monitoring_anomaly log (what drift_alert reads)"
    )


class JobSink(_Strict):
    """The log sink that routes Vertex AI CustomJob service log entries to the vertex_job function's topic."""

    name: str = Field(default="relaunch-vertex-jobs", pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    topic: TopicName = VERTEX_JOBS_TOPIC
    log_filter: str = Field(
        default=SINK_FILTER, min_length=1, description="Vertex's own lifecycle entries of every CustomJob"
    )


GitHubEvent = Literal["push", "pull_request", "workflow_dispatch", "repository_dispatch"]


class GitHubWebhook(_Strict):
    """A repository webhook pointing at the github_webhook function."""

    repo: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", description="owner/name")
    function: Name = Field(description="The declared function with entry point github_webhook")
    events: list[GitHubEvent] = Field(min_length=1, description="Events GitHub sends")
    secret: SecretName = Field(description="The secret GitHub signs with: the function's webhook secret")


class WandbAutomation(_Strict):
    """A W&B webhook automation: an artifact event, filtered by alias, posting the payload template."""

    name: str = Field(min_length=1, max_length=100, description="Automation name, unique in the entity")
    entity: str = Field(min_length=1)
    project: str = Field(min_length=1, description="Project (or registry project) of the collection")
    collection: str | None = Field(default=None, description="Artifact collection (project-wide when unset)")
    artifact_type: str = Field(default="model", min_length=1)
    event: Literal["CREATE_ARTIFACT", "ADD_ARTIFACT_ALIAS", "LINK_ARTIFACT"]
    alias: str | None = Field(default=None, min_length=1, description="Alias regex (ADD_ARTIFACT_ALIAS only)")
    integration: str = Field(min_length=1, description="The W&B team's webhook integration name")
    function: Name = Field(description="The declared function with entry point wandb_webhook")
    payload: dict[str, str] | None = Field(
        default=None, description="Payload template; default: the one README documents (what wandb_webhook reads)"
    )

    @model_validator(mode="after")
    def _alias_only_for_alias_events(self) -> WandbAutomation:
        if (self.event == "ADD_ARTIFACT_ALIAS") != (self.alias is not None):
            raise ValueError("alias is required for ADD_ARTIFACT_ALIAS and allowed for no other event")
        if self.event == "CREATE_ARTIFACT" and self.collection is None:
            raise ValueError("CREATE_ARTIFACT needs a collection (W&B scopes it to one)")
        return self


class Wandb(_Strict):
    """W&B automations, created with the W&B SDK using the API key from Secret Manager."""

    api_key_secret: SecretName = Field(description="Secret holding a W&B API key allowed to manage automations")
    automations: list[WandbAutomation] = Field(default_factory=list)


class Iap(_Strict):
    """Identity-Aware Proxy on the dashboard's Cloud Run service: only these principals reach the page at all."""

    members: list[IapMember] = Field(min_length=1, description="Who may pass IAP (roles/iap.httpsResourceAccessor)")


class Dashboard(_Strict):
    """The dashboard function as deploy wires it; its admin token stays required for every action behind IAP too."""

    iap: Iap | None = Field(
        default=None, description="Put IAP in front of it (opt-in; see IAP for Cloud Run's conditions)"
    )


class Infra(_Strict):
    """Everything `relaunch deploy` creates, checks or configures, in one project and region."""

    project: str = Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$", description="Google Cloud project id")
    region: str = Field(pattern=r"^[a-z]+-[a-z]+[0-9]+$", description="Region of functions, jobs and triggers")
    source: str = Field(default="functions", min_length=1, description="Deploy source folder of every function")
    runtime: str = Field(default="python311", pattern=r"^python3[0-9]+$")
    apis: list[str] = Field(default_factory=list, description="Services enabled first, e.g. pubsub.googleapis.com")
    env: dict[EnvName, str] = Field(default_factory=dict, description="Environment of every function")
    service_accounts: list[ServiceAccount] = Field(default_factory=list)
    storage: Storage = Field(default_factory=Storage)
    topics: list[Topic] = Field(default_factory=list)
    subscriptions: list[Subscription] = Field(default_factory=list)
    functions: list[Function] = Field(default_factory=list)
    triggers: list[Trigger] = Field(default_factory=list)
    schedules: list[PipelineSchedule] = Field(default_factory=list)
    reconcile: ReconcileSchedule | None = Field(default_factory=ReconcileSchedule)
    drift_sink: DriftSink | None = Field(default_factory=DriftSink)
    job_sink: JobSink | None = Field(default_factory=JobSink)  # a finished Vertex job moves its run in seconds
    github_webhooks: list[GitHubWebhook] = Field(default_factory=list)
    wandb: Wandb | None = None
    dashboard: Dashboard = Field(default_factory=Dashboard)

    def sa_email(self, name: str) -> str:
        """The email of a declared service account."""
        return f"{name}@{self.project}.iam.gserviceaccount.com"

    def function(self, name: str) -> Function:
        """A declared function by name."""
        return next(f for f in self.functions if f.name == name)

    def dashboard_function(self) -> Function | None:
        """The declared function serving the dashboard (crosscheck allows one at most)."""
        return next((f for f in self.functions if f.entry_point == "dashboard"), None)

    def trigger_of(self, function: str) -> Trigger | None:
        """The trigger of a Pub/Sub function."""
        return next((t for t in self.triggers if t.function == function), None)

    def commands_topic(self) -> str:
        """The topic the orchestrator listens on (RELAUNCH_PUBSUB_COMMANDS_TOPIC, default relaunch-commands)."""
        return self.env.get("RELAUNCH_PUBSUB_COMMANDS_TOPIC", COMMANDS_TOPIC)
