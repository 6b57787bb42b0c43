"""Typed configuration from RELAUNCH_* environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the composition root needs; each field maps to RELAUNCH_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="RELAUNCH_", extra="ignore")

    profile: Literal["local"] = Field(default="local", description="Which adapters to build (gcp: cloud adapters)")
    home: Path = Field(default=Path(".relaunch"), description="State of the embedded stack: databases, logs, models")
    pipelines_dir: Path = Field(default=Path("pipelines"), description="Folder of pipeline specs (*.yaml)")
    github_webhook_secret: SecretStr | None = Field(default=None, description="Shared secret of the GitHub webhook")
    endpoint_url: str = Field(default="http://127.0.0.1:8090", description="Base URL of the local endpoint server")
    max_body_bytes: int = Field(default=5 * 1024 * 1024, gt=0, description="Largest webhook body accepted (413 above)")
    max_concurrent_jobs: int = Field(default=2, ge=1, description="Local agent: jobs running at once")

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
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @property
    def registry_dir(self) -> Path:
        return self.home / "registry"

    @property
    def endpoint_state_path(self) -> Path:
        return self.home / "endpoint.json"

    def webhook_secret(self) -> str | None:
        """The GitHub webhook secret's value, or None when unset or empty."""
        value = self.github_webhook_secret.get_secret_value() if self.github_webhook_secret else ""
        return value or None
