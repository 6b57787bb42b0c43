"""Typed configuration from RELAUNCH_* environment variables.

`profile` picks a default adapter for every port (local: the embedded stack; gcp: Pub/Sub, Firestore, Vertex AI,
Cloud Build, GitHub); each port's adapter can then be chosen on its own, e.g. RELAUNCH_BUS=pubsub with the local
agent. Secrets are SecretStr: they never appear in a repr, a log line or `relaunch doctor`'s output.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from relaunch.handoff import take_handed_secrets
from relaunch.settings_env import environment_values, merged

Profile = Literal["local", "gcp"]
StoreKind = Literal["sqlite", "firestore"]
BusKind = Literal["local", "pubsub"]
TrainingKind = Literal["local", "vertex", "wandb"]
BuilderKind = Literal["local", "cloudbuild"]
RegistryKind = Literal["local", "vertex"]
EndpointKind = Literal["local", "vertex"]
ArtifactsKind = Literal["local", "wandb"]
HistoryKind = Literal["git", "github"]

# The scikit-learn minor of the default serving container (Vertex's prebuilt sklearn-cpu.<major>-<minor>). A model
# pickled by one minor may not load in another: the training image must install the same one (the digits example
# pins it in its requirements.txt; tests/unit/test_serving_version.py holds the two together).
SKLEARN_SERVING_VERSION = "1.6"
SKLEARN_SERVING_IMAGE = (
    f"us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.{SKLEARN_SERVING_VERSION.replace('.', '-')}:latest"
)

# What each profile picks for a port left unset.
PROFILE_DEFAULTS: dict[str, dict[str, str]] = {
    "local": {
        "store": "sqlite",
        "bus": "local",
        "training": "local",
        "builder": "local",
        "registry": "local",
        "endpoint": "local",
        "artifacts": "local",
        "history": "git",
    },
    "gcp": {
        "store": "firestore",
        "bus": "pubsub",
        "training": "vertex",
        "builder": "cloudbuild",
        "registry": "vertex",
        "endpoint": "vertex",
        "artifacts": "wandb",
        "history": "github",
    },
}


def _secret(description: str) -> SecretStr | None:
    return Field(default=None, description=description)


# The embedded stack's servers in the order RELAUNCH_PORT_BASE numbers them: every function (FunctionName's order,
# tests/unit/test_stack_ports.py holds the two together), then the local endpoint.
PORT_ORDER = (
    "github_webhook",
    "wandb_webhook",
    "orchestrator",
    "drift_alert",
    "schedule_tick",
    "build_status",
    "vertex_job",
    "reconcile",
    "endpoint",
    "dashboard",  # after the endpoint: adding it moved no port a stack already had
)


def _port(what: str) -> int | None:
    return Field(default=None, ge=1, le=65535, description=f"Embedded stack: the fixed port of {what}")


class Settings(BaseModel):
    """Everything the composition root needs; each field maps to RELAUNCH_<NAME> (relaunch.settings_env reads them)."""

    # hide_input_in_errors: a refused configuration is printed and logged, and the whole input holds the secrets.
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True, validate_default=True)

    def __init__(self, **given: Any) -> None:
        """`given` first, then the environment, then secrets another relaunch process handed this one (handoff)."""
        secret = set(secret_fields())
        handed = {name: value for name, value in take_handed_secrets().items() if name in secret}
        super().__init__(**merged(given, environment_values(type(self).model_fields, os.environ), handed))

    profile: Profile = Field(default="local", description="Default adapters: local (embedded) or gcp (cloud)")
    # Per-port adapter choice; None takes the profile's default.
    store: StoreKind | None = Field(default=None, description="Run store: sqlite | firestore")
    bus: BusKind | None = Field(default=None, description="Command bus: local | pubsub")
    training: TrainingKind | None = Field(default=None, description="Training backend: local | vertex | wandb")
    builder: BuilderKind | None = Field(default=None, description="Image builder: local | cloudbuild")
    registry: RegistryKind | None = Field(default=None, description="Model registry: local | vertex")
    endpoint: EndpointKind | None = Field(default=None, description="Serving endpoint: local | vertex")
    artifacts: ArtifactsKind | None = Field(default=None, description="Model artifacts of W&B events: local | wandb")
    history: HistoryKind | None = Field(default=None, description="Where commits stand (champion age): git | github")

    # -- embedded stack ---------------------------------------------------------------------------------------
    home: Path = Field(default=Path(".relaunch"), description="State of the embedded stack: databases, logs, models")
    pipelines_dir: Path = Field(default=Path("pipelines"), description="Folder of pipeline specs (*.yaml)")
    endpoint_url: str = Field(default="http://127.0.0.1:8090", description="Base URL of the local endpoint server")
    max_concurrent_jobs: int = Field(default=2, ge=1, description="Local agent: jobs running at once")
    job_sandbox: Literal["auto", "off", "required"] = Field(
        default="auto",
        description="Local agent: run each job in private PID and mount namespaces that hide the stack from it"
        " (auto: where this machine allows it; required: refuse to start the agent without it; off)",
    )
    python_envs_dir: Path | None = Field(
        default=None,
        description="Local build: where the commits' Python environments are kept, one per hash of declared"
        " dependencies (default: RELAUNCH_HOME/envs); stacks that share it build each environment once. Outside"
        " RELAUNCH_HOME, a sandboxed job sees it read-only",
    )
    reconcile_interval_s: float = Field(
        default=30.0, gt=0, description="Embedded stack: seconds between reconcile ticks on relaunch-reconcile"
    )
    # -- embedded stack's ports (unset: the OS picks a free one at each start) -----------------------------------
    port_base: int | None = Field(
        default=None,
        ge=1,
        le=65535 - len(PORT_ORDER) + 1,
        description="Embedded stack: the first fixed port; the functions get PORT_BASE+0.. in the order "
        + ", ".join(PORT_ORDER)
        + " (the endpoint, then the dashboard, last); a RELAUNCH_PORT_<NAME> setting wins over it",
    )
    port_github_webhook: int | None = _port("github_webhook")
    port_wandb_webhook: int | None = _port("wandb_webhook")
    port_orchestrator: int | None = _port("orchestrator")
    port_drift_alert: int | None = _port("drift_alert")
    port_schedule_tick: int | None = _port("schedule_tick")
    port_build_status: int | None = _port("build_status")
    port_vertex_job: int | None = _port("vertex_job")
    port_reconcile: int | None = _port("reconcile")
    port_endpoint: int | None = _port("the local endpoint server")
    port_dashboard: int | None = _port("the dashboard (`relaunch up` serves it)")
    # -- retention (`relaunch gc`, and reconcile once per interval) ---------------------------------------------
    retain_workspaces: int = Field(
        default=20, ge=0, description="Finished runs whose checkout and outputs are kept, newest first"
    )
    retain_body_days: float = Field(
        default=30.0, ge=0, description="Days an inbox row keeps its raw body (the row itself stays)"
    )
    retain_versions: int = Field(
        default=10, ge=1, description="Newest model versions kept per pipeline, besides every aliased or served one"
    )
    retain_env_days: float = Field(
        default=14.0,
        ge=0,
        description="Days a commit's Python environment (local build) is kept unused once no kept checkout names it;"
        " environments shared outside RELAUNCH_HOME (RELAUNCH_PYTHON_ENVS_DIR) are never collected",
    )
    retain_gc_interval_s: float = Field(
        default=3600.0, ge=0, description="Seconds between reconcile's housekeeping passes (0: reconcile never does)"
    )
    price_file: Path | None = Field(
        default=None, description="YAML/JSON price table merged over the built-in one (`relaunch cost`)"
    )

    # -- inbound webhooks -------------------------------------------------------------------------------------
    github_webhook_secret: SecretStr | None = _secret("Shared secret of the GitHub webhook (required)")
    wandb_webhook_token: SecretStr | None = _secret("Bearer token W&B automations send (Authorization header)")
    wandb_webhook_secret: SecretStr | None = _secret("Secret W&B signs X-Wandb-Signature with")
    insecure_dev_mode: bool = Field(
        default=False,
        description="Development only: let webhook functions start without a secret and accept unsigned deliveries",
    )
    max_body_bytes: int = Field(default=5 * 1024 * 1024, gt=0, description="Largest webhook body accepted (413 above)")

    # -- Google Cloud -----------------------------------------------------------------------------------------
    gcp_project: str | None = Field(default=None, description="Project id of the Google Cloud adapters")
    gcp_region: str = Field(default="us-central1", description="Region of Vertex AI and Cloud Build")
    firestore_database: str = Field(default="(default)", description="Firestore database id")
    firestore_prefix: str = Field(default="relaunch", description="Prefix of relaunch's Firestore collections")
    pubsub_commands_topic: str = Field(default="relaunch-commands", description="Topic the orchestrator listens on")
    artifact_root: str | None = Field(
        default=None, description="Where runs write models and evaluations (gs://bucket/prefix on GCP)"
    )
    vertex_api_endpoint: str | None = Field(
        default=None, description="Override of the Vertex AI API host (tests point it at a local server)"
    )
    vertex_service_account: str | None = Field(default=None, description="Service account training jobs run as")
    vertex_serving_image: str = Field(
        default=SKLEARN_SERVING_IMAGE,
        description="Serving container of uploaded models (its framework version must be the training image's)",
    )
    vertex_endpoint_machine_type: str = Field(default="n1-standard-2", description="Machine of deployed models")
    cloudbuild_api_endpoint: str | None = Field(default=None, description="Override of the Cloud Build API host")
    image_repository: str | None = Field(
        default=None, description="Where training images are pushed, e.g. us-docker.pkg.dev/PROJECT/relaunch"
    )
    build_logs_bucket: str | None = Field(default=None, description="gs:// bucket for Cloud Build logs")
    build_service_account: str | None = Field(
        default=None, description="Email of the service account image builds run as (default: Cloud Build's own)"
    )
    build_github_app_key_secret: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{1,255}$",
        description="Secret Manager secret holding the GitHub App's private key: image builds mint a read-only"
        " installation token from it to clone private repositories (unset: anonymous clone)",
    )

    # -- W&B --------------------------------------------------------------------------------------------------
    wandb_api_key: SecretStr | None = _secret("W&B API key (Launch queue and artifact lookups)")
    wandb_base_url: str = Field(default="https://api.wandb.ai", description="W&B API host")
    wandb_entity: str | None = Field(default=None, description="W&B entity of the Launch queue")
    wandb_project: str | None = Field(default=None, description="W&B project runs are launched into")
    wandb_launch_queue: str | None = Field(default=None, description="W&B Launch queue name")
    wandb_launch_staging_bucket: str | None = Field(
        default=None,
        description="gs:// path W&B's Vertex runner stages Launch jobs in (default: RELAUNCH_ARTIFACT_ROOT if gs://)",
    )
    wandb_promote_alias: str = Field(default="production", description="Alias moved to a promoted W&B artifact")

    # -- notifications ----------------------------------------------------------------------------------------
    github_token: SecretStr | None = _secret("GitHub token: statuses; an App installation token also gets checks")
    github_api_url: str = Field(default="https://api.github.com", description="GitHub REST API base URL")
    github_token_is_app: bool = Field(
        default=False, description="The token is a GitHub App installation token (check runs allowed)"
    )
    github_app_id: str | None = Field(
        default=None, pattern=r"^(?:[0-9]{1,20}|Iv[0-9A-Za-z.]{1,40})$", description="GitHub App id (or client id)"
    )
    github_app_private_key: SecretStr | None = _secret(
        "GitHub App private key (PEM): relaunch acts as the App's installation, tokens renewed before they expire"
    )
    github_app_installation_id: int | None = Field(default=None, gt=0, description="GitHub App installation id")
    slack_webhook_url: SecretStr | None = _secret("Slack incoming-webhook URL")
    public_url: str | None = Field(
        default=None, description="Where users can see runs (links in reports); `relaunch up`: its dashboard's URL"
    )
    iap_audience: str | None = Field(
        default=None, description="Behind IAP (deploy sets it): the audience its signed header must name to be read"
    )
    dashboard_token: SecretStr | None = _secret(
        "Admin token of the dashboard: every action needs it, and so does reading off the embedded stack (the"
        " embedded stack makes its own in RELAUNCH_HOME/secrets/dashboard_token)"
    )

    @field_validator("github_app_private_key")
    @classmethod
    def _pem_private_key(cls, key: SecretStr | None) -> SecretStr | None:
        """Only the PEM armour is checked: a key pasted without it, or a public key, fails here and not at signing."""
        text = key.get_secret_value().strip() if key else ""
        if text and not (text.startswith("-----BEGIN ") and text.split("\n", 1)[0].endswith(" PRIVATE KEY-----")):
            raise ValueError(
                "RELAUNCH_GITHUB_APP_PRIVATE_KEY must be a PEM private key (-----BEGIN … PRIVATE KEY-----)"
            )
        return key

    @model_validator(mode="after")
    def _one_github_identity(self) -> Settings:
        """A token or a whole App (id, key, installation), not both; the builds' key secret belongs to an App."""
        app = {
            "github_app_id": bool(self.github_app_id),
            "github_app_private_key": bool(reveal(self.github_app_private_key)),
            "github_app_installation_id": self.github_app_installation_id is not None,
        }
        missing = [f"RELAUNCH_{name.upper()}" for name, value in app.items() if not value]
        if len(missing) < len(app) and missing:
            raise ValueError(f"a GitHub App needs all of its settings: {', '.join(missing)} not set")
        if not missing and reveal(self.github_token):
            raise ValueError(
                "RELAUNCH_GITHUB_TOKEN and a GitHub App (RELAUNCH_GITHUB_APP_ID, RELAUNCH_GITHUB_APP_PRIVATE_KEY,"
                " RELAUNCH_GITHUB_APP_INSTALLATION_ID) are both set: configure one"
            )
        if self.build_github_app_key_secret and missing:
            raise ValueError(
                f"RELAUNCH_BUILD_GITHUB_APP_KEY_SECRET is the key of a GitHub App: {', '.join(missing)} not set"
            )
        return self

    def adapter(self, port: str) -> str:
        """The adapter chosen for `port`: its own setting, else the profile's default."""
        chosen = getattr(self, port)
        return str(chosen) if chosen is not None else PROFILE_DEFAULTS[self.profile][port]

    @property
    def secrets_dir(self) -> Path:
        """The embedded stack's own secrets, one file each (0600) in a folder of their own (0700)."""
        return self.home / "secrets"

    @property
    def store_path(self) -> Path:
        return self.home / "relaunch.db"

    @property
    def bus_path(self) -> Path:
        return self.home / "bus.db"

    @property
    def agent_path(self) -> Path:
        return self.home / "agent.db"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def workspaces_dir(self) -> Path:
        return self.home / "workspaces"

    @property
    def envs_dir(self) -> Path:
        """The checkouts' Python environments, one per hash of declared dependencies (the agent's too)."""
        return self.python_envs_dir or self.home / "envs"

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @property
    def registry_dir(self) -> Path:
        return self.home / "registry"

    @property
    def wandb_staging_bucket(self) -> str | None:
        """Where W&B's Vertex runner stages jobs: the explicit setting, else a gs:// artifact root."""
        root = self.artifact_root if (self.artifact_root or "").startswith("gs://") else None
        return self.wandb_launch_staging_bucket or root

    @property
    def wandb_artifacts_dir(self) -> Path:
        """Local stand-in for W&B artifacts (entity/project/collection/vN folders)."""
        return self.home / "wandb-artifacts"

    @property
    def endpoint_state_path(self) -> Path:
        return self.home / "endpoint.json"

    def webhook_secret(self) -> str | None:
        """The GitHub webhook secret's value, or None when unset or empty."""
        return reveal(self.github_webhook_secret)


def secret_fields() -> tuple[str, ...]:
    """The names of the settings that hold secrets (every SecretStr field)."""
    return tuple(name for name, info in Settings.model_fields.items() if "SecretStr" in str(info.annotation))


def secret_values(settings: Settings) -> dict[str, str]:
    """The secrets set in `settings`, by field name (for handing them to another process; never for a log)."""
    found = {name: reveal(getattr(settings, name)) for name in secret_fields()}
    return {name: value for name, value in found.items() if value}


def child_environment(settings: Settings, inherited: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a relaunch process this one starts, whose own Settings() then equal `settings`, secrets aside.

    `inherited` (this process's environment by default) passes on what is no setting (PATH, the emulator hosts); its
    RELAUNCH_ variable of every field is replaced by the field's value in `settings`, so a value chosen in code reaches
    the child as one read from the environment does. Paths are made absolute: a child may start elsewhere. Secrets
    never travel in an environment (readable for the process's whole life): they go through relaunch.handoff.
    """
    names = {f"relaunch_{name}" for name in Settings.model_fields}
    source = os.environ if inherited is None else inherited
    env = {key: value for key, value in source.items() if key.lower() not in names}
    values = settings.model_dump(mode="json", exclude=set(secret_fields()), exclude_none=True)
    for name, value in values.items():
        path = getattr(settings, name)
        if isinstance(path, Path):
            value = str(path.resolve())
        env[f"RELAUNCH_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


def reveal(secret: SecretStr | None) -> str | None:
    """A secret's value, or None when unset or empty."""
    value = secret.get_secret_value() if secret else ""
    return value or None
