"""The gcp-emulated demo's W&B leg: a model logged to W&B and given the alias `candidate` is evaluated and gated.

After the push story, a model is trained from the example's default parameters (the champion's own) and logged as a
version of the collection the digits spec watches (`source.wandb`), with the alias `candidate`. W&B's automation then
posts its webhook, as the triggers file declares it (ADD_ARTIFACT_ALIAS, the README's payload template, the bearer
token from Secret Manager), to the deployed wandb_webhook function. The run fetches the version with the wandb SDK
into Cloud Storage (WandbArtifacts -> GcsBlobStore.put_tree), evaluates it on Vertex against the champion, and gates.

The expected verdict follows from domain/gate.py: the same parameters give the same model (scikit-learn's solver is
deterministic), so accuracy and macro F1 equal the champion's, a regression of 0 is within `max_regression`, and the
paired test sees no discordant example; the run is promoted, W&B's promote alias moves onto the version, and the
endpoint serves the new model version.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol

from relaunch import bootstrap
from relaunch.demo import DemoFailed, Narrator
from relaunch.deploy.infra import Infra, WandbAutomation
from relaunch.domain.model import PipelineRun, RunState
from relaunch.emulated.cloud import EmulatedCloud
from relaunch.emulated.wandb_state import FakeArtifact
from relaunch.simulate import send_wandb, wandb_payload

TOKEN = "RELAUNCH_WANDB_WEBHOOK_TOKEN"
MODEL_FILE = "model.joblib"
ALIAS = "candidate"  # the alias the triggers file's automation fires on (its regex must match it)


class WandbTarget(Protocol):
    """What the leg needs of the demo's target (demo_gcp.GcpTarget)."""

    @property
    def app(self) -> bootstrap.App: ...

    @property
    def cloud(self) -> EmulatedCloud: ...

    def predict(self, instances: list[Any]) -> dict[str, Any]: ...


def wandb_leg(
    target: WandbTarget, infra: Infra, urls: dict[str, str], secrets: dict[str, str], example: Path, narrator: Narrator
) -> PipelineRun:
    """Log a candidate to W&B, deliver the automation's webhook, follow the run; DemoFailed unless it is promoted.

    `urls` maps deployed function names to their URLs; `secrets` is Secret Manager (name -> value).
    """
    automation = _automation(infra)
    narrator.say("W&B leg: train a model with the example's default params (the champion's own) and log it to W&B")
    with tempfile.TemporaryDirectory(prefix="relaunch-wandb-model-") as tmp:
        artifact = log_candidate(target.cloud, automation, train_default_model(example, Path(tmp)))
    ref = f"{artifact.entity}/{artifact.project}/{artifact.collection}:v{artifact.version}"
    narrator.say(f"W&B: logged {ref} ({MODEL_FILE}) and added the alias {ALIAS}")
    narrator.say("expect promoted: the same params give the champion's scores, a regression of 0 is within the gate's")
    narrator.say("max_regression and the paired test finds no example that changed")
    run = narrator.follow(_deliver(automation, artifact, infra, urls, secrets, narrator))
    _expect(
        run.state is RunState.PROMOTED,
        f"W&B run ended {run.state.value}: {run.reason}; the champion's own params should pass the gate",
    )
    _expect_in_cloud_storage(target.cloud, run)
    alias = narrator.app.settings.wandb_promote_alias
    _expect_alias_moved(target.cloud, artifact, alias)
    narrator.say(f"gate passed {run.id}: {ref} promoted as {run.model_version}; W&B alias {alias} -> {ref}")
    _expect_served(target, narrator, run)
    narrator.say(f"done: the W&B candidate {ref} serves as {run.model_version}")
    return run


def _deliver(
    automation: WandbAutomation,
    artifact: FakeArtifact,
    infra: Infra,
    urls: dict[str, str],
    secrets: dict[str, str],
    narrator: Narrator,
) -> str:
    """W&B's part: the automation's webhook, rendered from the README's template, with its bearer token; the run id."""
    function = infra.function(automation.function)
    collection = f"{artifact.entity}/{artifact.project}/{artifact.collection}"
    payload = wandb_payload(
        automation.event, f"{collection}:{ALIAS}", alias=ALIAS, author="relaunch-demo", artifact_id=artifact.id
    )
    reply = send_wandb(urls[function.name], payload, token=secrets[function.secrets[TOKEN]])
    narrator.say(f"W&B automation {automation.name}: {automation.event} {ALIAS} -> {reply.status_code} {reply.text}")
    _expect(reply.status_code == 202, f"wandb webhook answered {reply.status_code}: {reply.text}")
    runs = reply.json().get("runs") or []
    _expect(len(runs) == 1, f"expected one run from the W&B event, got {runs}")
    return str(runs[0])


def train_default_model(example: Path, work: Path) -> bytes:
    """The example's train.py with its own params.json, in a copy of the example (AIP_MODEL_DIR a local folder)."""
    code, out = work / "code", work / "model"
    code.mkdir()
    for path in example.glob("*"):  # the example's files only: no caches, nothing written into the source tree
        if path.is_file():
            (code / path.name).write_bytes(path.read_bytes())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIP_", "RELAUNCH_", "WANDB_"))}
    env |= {"AIP_MODEL_DIR": str(out), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "train.py"], cwd=code, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0 or not (out / MODEL_FILE).is_file():
        raise DemoFailed(f"train.py for the W&B candidate failed ({done.returncode}): {done.stderr[-500:]}")
    return (out / MODEL_FILE).read_bytes()


def log_candidate(cloud: EmulatedCloud, automation: WandbAutomation, model: bytes) -> FakeArtifact:
    """What `run.log_artifact(...)` then adding the alias leaves in W&B: a version, the run that logged it."""
    assert cloud.wandb is not None and automation.collection is not None
    fake = cloud.wandb
    with fake.lock:
        version = sum(1 for a in fake.artifacts if a.collection == automation.collection)
        producer = f"digits-train-{version}"
        fake.add_run(producer, "finished", summary={"_step": 0})
        artifact = FakeArtifact(
            automation.entity,
            automation.project,
            automation.collection,
            version,
            {MODEL_FILE: model},
            metadata={"params": "params.json"},
            aliases=[ALIAS],
            type=automation.artifact_type,
            created_by=producer,
        )
        fake.artifacts.append(artifact)
    return artifact


def _automation(infra: Infra) -> WandbAutomation:
    """The triggers file's automation on alias ALIAS (the leg sends what it declares)."""
    automations = infra.wandb.automations if infra.wandb else []
    found = [a for a in automations if a.event == "ADD_ARTIFACT_ALIAS" and re.search(a.alias or "", ALIAS)]
    _expect(bool(found) and found[0].collection is not None, f"the triggers file has no automation on alias {ALIAS}")
    return found[0]


def _expect_in_cloud_storage(cloud: EmulatedCloud, run: PipelineRun) -> None:
    assert cloud.gcs is not None
    wanted = f"runs/{run.id}/model/{MODEL_FILE}"
    found = [p for p in cloud.gcs.root.rglob(MODEL_FILE) if p.as_posix().endswith(wanted)]
    _expect(bool(found), f"the W&B version did not land in Cloud Storage ({wanted})")


def _expect_alias_moved(cloud: EmulatedCloud, artifact: FakeArtifact, alias: str, wait_s: float = 15.0) -> None:
    """The promote alias reaches W&B just after the run is saved promoted (the rollout step sets it next)."""
    deadline = time.monotonic() + wait_s
    while alias not in artifact.aliases and time.monotonic() < deadline:
        time.sleep(0.1)
    _expect(alias in artifact.aliases, f"W&B alias {alias!r} was not moved onto v{artifact.version}")


def _expect_served(target: WandbTarget, narrator: Narrator, run: PipelineRun) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    answer = target.predict(digits.data[-3:].tolist())
    narrator.say(f"predict -> {answer.get('predictions')} from model {answer.get('model_version')}")
    _expect(
        answer.get("model_version") == run.model_version,
        f"endpoint served {answer.get('model_version')}, the promoted W&B candidate is {run.model_version}",
    )


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise DemoFailed(message)
