"""`relaunch doctor`: check a configuration and say exactly what is missing, without side effects.

Pure over its inputs: the settings, the environment and two lookups (is a module installed, does a path exist), so it
never imports an SDK, opens a connection or creates a file. Each finding names the variable to set.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from relaunch.domain.gitnames import is_local_url
from relaunch.settings import Settings, reveal

if TYPE_CHECKING:
    from relaunch.domain.spec import PipelineSpec

Level = Literal["ok", "warn", "optional", "missing"]  # optional: a feature left off, said with how to turn it on

# The module each adapter needs, and the pip extra that installs it.
SDKS: dict[tuple[str, str], tuple[str, str]] = {
    ("store", "firestore"): ("google.cloud.firestore", "gcp"),
    ("bus", "pubsub"): ("google.cloud.pubsub_v1", "gcp"),
    ("training", "vertex"): ("google.cloud.aiplatform_v1", "gcp"),
    ("training", "wandb"): ("wandb", "wandb"),
    ("builder", "cloudbuild"): ("google.cloud.devtools.cloudbuild_v1", "gcp"),
    ("registry", "vertex"): ("google.cloud.aiplatform_v1", "gcp"),
    ("endpoint", "vertex"): ("google.cloud.aiplatform_v1", "gcp"),
    ("artifacts", "wandb"): ("wandb", "wandb"),
}
PORTS = ("store", "bus", "training", "builder", "registry", "endpoint", "artifacts")
GCP_ADAPTERS = {"firestore", "pubsub", "vertex", "cloudbuild"}


@dataclass(frozen=True)
class Finding:
    """One line of the report: what was checked, how it stands, and what to do about it."""

    level: Level
    subject: str
    detail: str


def _sandbox_probe() -> str | None:
    from relaunch.adapters.local.sandbox import probe  # runs one throw-away sandboxed process, writes nothing of ours

    return probe()


def _module_installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def diagnose(
    settings: Settings,
    env: Mapping[str, str] | None = None,
    *,
    installed: Callable[[str], bool] = _module_installed,
    exists: Callable[[Path], bool] = Path.exists,
    sandbox_probe: Callable[[], str | None] = _sandbox_probe,
) -> list[Finding]:
    """Every check, in report order."""
    env = os.environ if env is None else env
    chosen = {port: settings.adapter(port) for port in PORTS}
    findings = [Finding("ok", f"adapter {port}", f"{kind} (RELAUNCH_{port.upper()})") for port, kind in chosen.items()]
    findings += _sdks(chosen, installed)
    findings += _webhooks(settings)
    findings += _job_sandbox(settings, chosen, sandbox_probe)
    findings += _gcp(settings, chosen, env, exists)
    findings += _wandb(settings, chosen)
    findings += _notifiers(settings, installed)
    findings += _pipelines(settings, exists)
    return findings


def _sdks(chosen: Mapping[str, str], installed: Callable[[str], bool]) -> list[Finding]:
    out = []
    for port, kind in chosen.items():
        sdk = SDKS.get((port, kind))
        if sdk and not installed(sdk[0]):
            fix = f"{sdk[0]} is not installed: pip install 'relaunch[{sdk[1]}]'"
            out.append(Finding("missing", f"{port} SDK", fix))
    return out


def _webhooks(s: Settings) -> list[Finding]:
    out = []
    if s.webhook_secret():
        out.append(Finding("ok", "github webhook", "secret configured"))
    elif s.profile == "local":
        made = s.secrets_dir / "github_webhook_secret"
        out.append(Finding("ok", "github webhook", f"`relaunch up` makes and uses its own secret in {made}"))
    elif s.insecure_dev_mode:
        out.append(Finding("warn", "github webhook", "no secret: accepting UNSIGNED deliveries (insecure dev mode)"))
    else:
        out.append(
            Finding("missing", "github webhook", "set RELAUNCH_GITHUB_WEBHOOK_SECRET (the function refuses deliveries)")
        )
    if reveal(s.wandb_webhook_token) or reveal(s.wandb_webhook_secret):
        out.append(Finding("ok", "wandb webhook", "token and/or signing secret configured"))
    elif not s.insecure_dev_mode and s.profile != "local":
        out.append(
            Finding(
                "warn",
                "wandb webhook",
                "set RELAUNCH_WANDB_WEBHOOK_TOKEN and/or RELAUNCH_WANDB_WEBHOOK_SECRET to accept W&B automations",
            )
        )
    return out


def _job_sandbox(s: Settings, chosen: Mapping[str, str], sandbox_probe: Callable[[], str | None]) -> list[Finding]:
    from relaunch.adapters.local.sandbox import describe

    if chosen["training"] != "local":
        return []
    why_not = sandbox_probe() if s.job_sandbox != "off" else None
    level: Level = "ok" if s.job_sandbox != "off" and why_not is None else "warn"
    if s.job_sandbox == "required" and why_not is not None:
        level = "missing"
    return [Finding(level, "job sandbox", describe(s.job_sandbox, why_not) + " (RELAUNCH_JOB_SANDBOX)")]


def _gcp(
    s: Settings, chosen: Mapping[str, str], env: Mapping[str, str], exists: Callable[[Path], bool]
) -> list[Finding]:
    used = sorted({kind for kind in chosen.values() if kind in GCP_ADAPTERS})
    if not used:
        return []
    out = []
    if not s.gcp_project:
        out.append(Finding("missing", "gcp project", f"set RELAUNCH_GCP_PROJECT (needed by {', '.join(used)})"))
    out.append(_credentials(chosen, env, exists))
    if chosen["training"] == "vertex" and not (s.artifact_root or "").startswith("gs://"):
        out.append(Finding("missing", "artifact root", "set RELAUNCH_ARTIFACT_ROOT=gs://BUCKET/PREFIX for Vertex jobs"))
    if chosen["builder"] == "cloudbuild" and not s.image_repository:
        out.append(
            Finding("missing", "image repository", "set RELAUNCH_IMAGE_REPOSITORY=REGION-docker.pkg.dev/PROJECT/REPO")
        )
    return out


def _credentials(chosen: Mapping[str, str], env: Mapping[str, str], exists: Callable[[Path], bool]) -> Finding:
    emulated = {"firestore": "FIRESTORE_EMULATOR_HOST", "pubsub": "PUBSUB_EMULATOR_HOST"}
    needs_real = [k for k in chosen.values() if k in GCP_ADAPTERS and not env.get(emulated.get(k, ""), "")]
    if not needs_real:
        return Finding("ok", "gcp credentials", "not needed: every GCP adapter in use points at an emulator")
    key_file = env.get("GOOGLE_APPLICATION_CREDENTIALS")
    if key_file:
        if exists(Path(key_file)):
            return Finding("ok", "gcp credentials", "GOOGLE_APPLICATION_CREDENTIALS points at a file")
        return Finding("missing", "gcp credentials", "GOOGLE_APPLICATION_CREDENTIALS names a file that does not exist")
    adc = Path(env.get("CLOUDSDK_CONFIG") or Path(env.get("HOME", "~")) / ".config" / "gcloud")
    if exists(adc / "application_default_credentials.json"):
        return Finding("ok", "gcp credentials", "application default credentials (gcloud auth application-default)")
    if env.get("K_SERVICE") or env.get("FUNCTION_TARGET"):
        return Finding("ok", "gcp credentials", "running on Cloud Functions/Run: the service account's credentials")
    return Finding(
        "missing",
        "gcp credentials",
        "run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS",
    )


def _wandb(s: Settings, chosen: Mapping[str, str]) -> list[Finding]:
    if "wandb" not in (chosen["training"], chosen["artifacts"]):
        return []
    out = []
    if not reveal(s.wandb_api_key):
        out.append(Finding("missing", "wandb api key", "set RELAUNCH_WANDB_API_KEY"))
    if chosen["training"] == "wandb":
        for name in ("wandb_entity", "wandb_project", "wandb_launch_queue"):
            if not getattr(s, name):
                out.append(Finding("missing", "wandb launch", f"set RELAUNCH_{name.upper()}"))
    return out


def _notifiers(s: Settings, installed: Callable[[str], bool]) -> list[Finding]:
    out = []
    if reveal(s.github_token):
        what = "statuses, check runs and deployments" if s.github_token_is_app else "statuses and deployments"
        out.append(Finding("ok", "github notifier", f"token configured: {what}"))
        if not installed("github"):
            out.append(Finding("missing", "github SDK", "PyGithub is not installed: pip install 'relaunch[github]'"))
    else:
        out.append(Finding("warn", "github notifier", "no RELAUNCH_GITHUB_TOKEN: results stay in relaunch's timeline"))
    if reveal(s.slack_webhook_url):
        out.append(Finding("ok", "slack notifier", "incoming webhook configured"))
    else:
        detail = "not configured: set RELAUNCH_SLACK_WEBHOOK_URL (a Slack incoming webhook) to post each run's result"
        out.append(Finding("optional", "slack notifier", detail))
    return out


def _pipelines(s: Settings, exists: Callable[[Path], bool]) -> list[Finding]:
    from relaunch.config_files import load_specs  # reads YAML only; no side effects
    from relaunch.domain.spec import SpecError

    if not exists(s.pipelines_dir):
        return [Finding("missing", "pipelines", f"{s.pipelines_dir} does not exist (RELAUNCH_PIPELINES_DIR)")]
    try:
        specs = load_specs(s.pipelines_dir)
    except SpecError as exc:  # running functions keep their last valid specs (bootstrap.SpecCache)
        kept = "running functions keep serving the last valid specs until this is fixed"
        return [Finding("missing", "pipelines", f"{exc}; {kept}")]
    if not specs:
        return [Finding("warn", "pipelines", f"no *.yaml in {s.pipelines_dir}: no event will start a run")]
    found = [Finding("ok", "pipelines", f"{len(specs)} valid: {', '.join(sorted(specs))}")]
    found += _local_sources(s, specs)
    found += _default_clones(s, specs)
    if s.adapter("endpoint") == "vertex":  # the same refusal a run of such a pipeline ends with before deploying
        from relaunch.domain.rollout import unsupported

        refused = {name: unsupported(spec.rollout, can_address_versions=False) for name, spec in specs.items()}
        found += [Finding("missing", f"pipeline {name}", why) for name, why in sorted(refused.items()) if why]
    return found


def _local_sources(s: Settings, specs: Mapping[str, PipelineSpec]) -> list[Finding]:
    """A file:// source names a path on this machine: only the embedded profile's local builder can clone it."""
    if s.profile != "gcp" and s.adapter("builder") != "cloudbuild":
        return []
    return [
        Finding(
            "missing",
            f"pipeline {name}",
            f"source.clone_url {spec.source.clone_url} is a local path, which only the embedded profile can clone:"
            " give an https:// or ssh:// clone_url (or none: https://github.com/<repo>.git)",
        )
        for name, spec in sorted(specs.items())
        if spec.source.clone_url and is_local_url(spec.source.clone_url)
    ]


def _default_clones(s: Settings, specs: Mapping[str, PipelineSpec]) -> list[Finding]:
    """The embedded builder clones a spec without clone_url from GitHub: a local or private repository fails there."""
    if s.profile == "gcp" or s.adapter("builder") != "local":
        return []
    return [
        Finding(
            "warn",
            f"pipeline {name}",
            f"no source.clone_url, so its runs (push, schedule, drift, dispatch) clone {spec.source.repo_clone_url()},"
            " which fails unless this machine can reach it: set source.clone_url to where the code is"
            " (file:///PATH for a repository on this machine)",
        )
        for name, spec in sorted(specs.items())
        if not spec.source.clone_url
    ]


def startup_warnings(settings: Settings, specs: Mapping[str, PipelineSpec]) -> list[str]:
    """One line each for what `relaunch up` should say before a run fails on it (the specs are already valid)."""
    return [f"warning: {f.subject}: {f.detail}" for f in _default_clones(settings, specs)]


def render(findings: list[Finding]) -> str:
    """The report as text, one finding a line, with a closing verdict."""
    marks = {"ok": "ok  ", "warn": "warn", "optional": "opt ", "missing": "MISS"}
    lines = [f"{marks[f.level]}  {f.subject:18} {f.detail}" for f in findings]
    missing = sum(f.level == "missing" for f in findings)
    lines.append("ready" if not missing else f"{missing} thing(s) missing")
    return "\n".join(lines)
