"""A W&B alias event is deduped on the version the alias names: the same event again is a redelivery, the alias moved
to another version is a new event. `relaunch simulate wandb` does on the local artifact store what W&B did before
sending the event (log the version, set the alias) and sends the version's id, as W&B's automation payload does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from relaunch.adapters.local.artifacts import LocalArtifacts
from relaunch.domain.spec import PipelineSpec
from relaunch.service.artifact_pin import pinned_version
from relaunch.service.ingest import IngestService
from relaunch.simulate import local_wandb_event
from relaunch.triggers.errors import TriggerError
from relaunch.triggers.wandb import WandbEvent, parse_wandb
from tests.fakes import FakeBus, FakeStore

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "wandb"
TOKEN = "tok"
HEADERS = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
COLLECTION = "acme/digits/digits-model"
SPEC = PipelineSpec.model_validate(
    {
        "name": "digits",
        "source": {
            "repo": "acme/digits",
            "wandb": {"entity": "acme", "project": "digits", "collection": "digits-model"},
        },
        "train": {"command": ["python", "train.py"]},
        "evaluate": {"command": ["python", "evaluate.py"]},
        "endpoint": "digits-ep",
    }
)


def send(service: IngestService, payload: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps(payload).encode()
    return service.wandb(parse_wandb(HEADERS, body, token=TOKEN, secret=None), HEADERS, body).body


@pytest.fixture
def artifacts(tmp_path: Path) -> LocalArtifacts:
    store = LocalArtifacts(tmp_path / "wandb-artifacts")
    for n in range(2):
        model = tmp_path / f"model{n}"
        model.mkdir()
        (model / "model.json").write_text(json.dumps({"n": n}))
        store.log(COLLECTION, model)
    return store


def test_an_alias_event_naming_its_alias_without_the_version_id_is_a_422() -> None:
    sample = json.loads((SAMPLES / "ADD_ARTIFACT_ALIAS.json").read_text())
    assert sample["artifact_version"].startswith("wandb-artifact://_id/")  # the README's template renders it
    del sample["artifact_version"]
    body = json.dumps(sample).encode()
    with pytest.raises(TriggerError) as raised:
        parse_wandb(HEADERS, body, token=TOKEN, secret=None)
    assert raised.value.status == 422 and raised.value.field == "artifact_version"
    assert "${artifact_version}" in raised.value.message and "redelivery" in raised.value.message


def test_an_alias_event_naming_a_concrete_version_needs_no_id() -> None:
    sample = json.loads((SAMPLES / "ADD_ARTIFACT_ALIAS.json").read_text())
    del sample["artifact_version"]
    sample["artifact_version_string"] = "acme-ml/churn/churn-model:v7"
    event = parse_wandb(HEADERS, json.dumps(sample).encode(), token=TOKEN, secret=None)
    assert isinstance(event, WandbEvent) and event.version == "v7" and event.artifact_ref is None


def test_simulate_sets_the_alias_it_names_and_sends_that_versions_id(artifacts: LocalArtifacts, tmp_path: Path) -> None:
    payload, notes = local_wandb_event(artifacts, "ADD_ARTIFACT_ALIAS", f"{COLLECTION}:v0", alias="candidate")
    assert artifacts.aliases(f"{COLLECTION}:v0")["candidate"] == "v0"
    assert payload["artifact_version_string"] == f"{COLLECTION}:candidate" and payload["alias"] == "candidate"
    assert notes == [f"alias candidate -> {COLLECTION}:v0"]
    fetched = artifacts.fetch(f"{COLLECTION}:candidate", str(tmp_path / "fetched"))
    assert fetched.ref == f"{COLLECTION}:v0" and payload["artifact_version"].endswith(f"/{fetched.artifact_id}")
    event = parse_wandb(HEADERS, json.dumps(payload).encode(), token=TOKEN, secret=None)
    assert isinstance(event, WandbEvent)
    assert pinned_version(event.artifact, event.artifact_ref, fetched) == f"{COLLECTION}:v0"


def test_a_moved_alias_is_a_new_event_and_the_same_event_again_a_redelivery(artifacts: LocalArtifacts) -> None:
    service = IngestService(FakeStore(), FakeBus(), lambda: {"digits": SPEC})
    first, _ = local_wandb_event(artifacts, "ADD_ARTIFACT_ALIAS", f"{COLLECTION}:v0", alias="candidate")
    assert send(service, first)["outcome"] == "accepted"
    assert send(service, first)["outcome"] == "duplicate"  # re-sent, byte for byte
    moved, _ = local_wandb_event(artifacts, "ADD_ARTIFACT_ALIAS", f"{COLLECTION}:v1", alias="candidate")
    assert moved["artifact_version_string"] == first["artifact_version_string"]  # W&B renders both the same
    accepted = send(service, moved)
    assert accepted["outcome"] == "accepted" and accepted["runs"]
    back, _ = local_wandb_event(artifacts, "ADD_ARTIFACT_ALIAS", f"{COLLECTION}:v0", alias="candidate")
    assert send(service, back)["outcome"] == "duplicate"  # back on v0: the very event of the first delivery


def test_simulate_logs_a_new_version_and_names_it(artifacts: LocalArtifacts, tmp_path: Path) -> None:
    model = tmp_path / "model2"
    model.mkdir()
    (model / "model.json").write_text("{}")
    payload, notes = local_wandb_event(artifacts, "CREATE_ARTIFACT", COLLECTION, model_dir=model)
    assert payload["artifact_version_string"] == f"{COLLECTION}:v2" and notes == [f"logged {model} as {COLLECTION}:v2"]
    assert payload["artifact_version"].startswith("wandb-artifact://_id/") and payload["alias"] == ""


@pytest.mark.parametrize(
    ("artifact", "model_dir", "message"),
    [
        (f"{COLLECTION}:v9", None, "does not exist"),
        (COLLECTION, None, "needs :vN"),
        ("not-a-path", None, "entity/project/name"),
        (COLLECTION, "missing", "is not a folder"),
    ],
)
def test_simulate_refuses_what_it_cannot_send_in_one_line(
    artifacts: LocalArtifacts, tmp_path: Path, artifact: str, model_dir: str | None, message: str
) -> None:
    folder = tmp_path / model_dir if model_dir else None
    with pytest.raises(ValueError, match=message) as raised:
        local_wandb_event(artifacts, "ADD_ARTIFACT_ALIAS", artifact, alias="candidate", model_dir=folder)
    assert "\n" not in str(raised.value)
