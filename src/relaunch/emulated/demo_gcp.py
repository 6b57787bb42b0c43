"""`relaunch demo --profile gcp-emulated`: the demo's story on the GCP code path, on this machine.

The same story as `relaunch demo` (a good commit built, trained, evaluated, gated and promoted; a worse one rejected;
the champion still answering), then a W&B leg (wandb_demo.py: a model logged to W&B with the alias `candidate` is
fetched into Cloud Storage, evaluated on Vertex against the champion and promoted). Every port is its GCP adapter
with its real SDK: the store is Firestore and the bus Pub/Sub (Google's emulators), images are built by Cloud Build,
jobs run and models are served by Vertex AI, artifacts live in Cloud Storage, commits are reported to GitHub, model
versions come from W&B (stand-ins of this package, refusing what the published API descriptions, or for W&B the
SDK's own queries, do not allow). The functions are the ones the shipped triggers file declares, each with
the environment `relaunch deploy` would give it (deployment.py). A finished job reaches the orchestrator through
the Vertex job log sink's topic, as on Google Cloud.

What is not Google Cloud: the jobs run as local processes in the folder Cloud Build's stand-in made of the commit
(no Docker here), with Vertex's environment and a folder standing for the /gcs/ mount (RELAUNCH_GCS_MOUNT_ROOT).
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TextIO

from relaunch import bootstrap
from relaunch.adapters.local.gcloud_emulators import unavailable_reason
from relaunch.demo import DEMO_REPO, DemoFailed, DemoOutcome, Narrator, demo_specs, project_root, run_scenario
from relaunch.deploy.plan_functions import function_env
from relaunch.domain.model import PipelineRun
from relaunch.emulated.cloud import EmulatedCloud
from relaunch.emulated.demo_infra import demo_infra, secret_values
from relaunch.emulated.deployment import LocalDeployment
from relaunch.emulated.wandb_demo import wandb_leg
from relaunch.settings import Settings

WEBHOOK = "github_webhook"
WEBHOOK_SECRET = "RELAUNCH_GITHUB_WEBHOOK_SECRET"


class EmulatorsMissing(RuntimeError):
    """This machine cannot run Google's Pub/Sub or Firestore emulator (or lacks the wandb SDK): no demo here."""


@dataclass(frozen=True)
class GcpOutcome(DemoOutcome):
    """The push story's outcome, and the run the W&B automation started."""

    wandb: PipelineRun


@dataclass(frozen=True)
class GcpTarget:
    """The deployed functions on the emulated cloud, as the scenario's target."""

    app: bootstrap.App
    cloud: EmulatedCloud
    deployment: LocalDeployment
    webhook_url: str
    webhook_secret: str
    endpoint: str

    def describe(self) -> str:
        functions = ", ".join(f.name for f in self.deployment.infra.functions)
        return f"GCP code path up in project {self.cloud.project} (emulators and stand-ins): {functions}"

    def pushed(self, sha: str) -> None:
        assert self.cloud.github is not None
        self.cloud.github.history.append(sha)  # GitHub knows a commit once it is pushed (compare answers for it)

    def predict(self, instances: list[Any]) -> dict[str, Any]:
        return self.app.endpoint.predict(self.endpoint, instances)


def run_gcp_demo(out: TextIO = sys.stdout) -> int:
    """Run the scenario on the emulated cloud; 0 only if every promise held, 2 if the emulators are missing."""
    try:
        gcp_scenario(out)
    except EmulatorsMissing as exc:
        print(f"relaunch demo --profile gcp-emulated: {exc}", file=out)
        return 2
    except DemoFailed as exc:
        print(f"\ndemo FAILED: {exc}", file=out)
        return 1
    return 0


def gcp_scenario(
    out: TextIO = sys.stdout, work: Path | None = None, inspect: Callable[[GcpTarget], None] | None = None
) -> GcpOutcome:
    """Start the emulated cloud, deploy the functions onto it, run the story; raise DemoFailed on a miss.

    `inspect` is called with the target after the story, before anything stops (tests read the stand-ins there).
    """
    for kind in ("pubsub", "firestore"):
        reason = unavailable_reason(kind)
        if reason:
            raise EmulatorsMissing(f"it needs Google's {kind} emulator: {reason}")
    if importlib.util.find_spec("wandb") is None:
        raise EmulatorsMissing("its W&B leg needs the wandb SDK: pip install -e '.[wandb]'")
    root = project_root()
    keep = work is not None
    work = work or Path(tempfile.mkdtemp(prefix="relaunch-gcp-demo-"))
    project = f"relaunch-demo-{secrets.token_hex(4)}"
    clone_url = f"https://github.com/{DEMO_REPO}.git"  # what GitHub would send; the stand-in clones the local copy
    repo_dir = work / "digits"
    specs = demo_specs(root / "pipelines", work / "pipelines", clone_url)
    infra = demo_infra(root / "triggers" / "relaunch.yaml", project, specs, work)
    job_topic = infra.job_sink.topic if infra.job_sink else "relaunch-vertex-jobs"
    cloud = EmulatedCloud(work, project, sources={clone_url: repo_dir.as_uri()}, job_topic=job_topic)
    try:
        cloud.start()
        for bucket in infra.storage.buckets:
            cloud.create_bucket(bucket.name)
        assert cloud.slack is not None
        values = secret_values(infra, github_token=cloud.github_token, slack_url=cloud.slack.url)
        if infra.wandb is not None:  # Secret Manager holds a key the W&B stand-in accepts
            values[infra.wandb.api_key_secret] = cloud.wandb_api_key
        env = {**cloud.env, "RELAUNCH_PIPELINES_DIR": str(specs), "RELAUNCH_HOME": str(work / "functions-home")}
        orchestrator = next(f for f in infra.functions if f.entry_point == "orchestrator")
        # This process acts as the orchestrator's account does (its App reads the store, the job and the endpoint).
        with _environment({**env, **function_env(infra, orchestrator)}):
            deployment = LocalDeployment(infra, env, values, work / "logs").start()
            try:
                cloud.publish = deployment.bus.publish
                target = _target(cloud, deployment, values, work)
                story = run_scenario(target, root / "examples" / "digits", repo_dir, out)
                urls = {f.name: deployment.url(f.name) for f in infra.functions}
                narrator = Narrator(target.app, out)
                run = wandb_leg(target, infra, urls, values, root / "examples" / "digits", narrator)
                outcome = GcpOutcome(**{f.name: getattr(story, f.name) for f in fields(story)}, wandb=run)
                if inspect is not None:
                    inspect(target)
            finally:
                deployment.stop()
        refused = cloud.refused()
        if refused:
            raise DemoFailed(f"requests the published API descriptions do not allow: {refused}")
        return outcome
    finally:
        cloud.stop()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def _target(cloud: EmulatedCloud, deployment: LocalDeployment, values: Mapping[str, str], work: Path) -> GcpTarget:
    webhook = next(f for f in deployment.infra.functions if f.entry_point == WEBHOOK)
    secret = values[webhook.secrets[WEBHOOK_SECRET]]
    app = bootstrap.App(Settings(home=work / "demo-home"))
    return GcpTarget(app, cloud, deployment, deployment.url(webhook.name), secret, endpoint="digits")


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """This process's environment with `values` for the block (the demo's own App reads its settings from it)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
