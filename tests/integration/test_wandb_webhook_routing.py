"""The wandb_webhook function refuses an event whose version string is not the collection it routes on."""

from __future__ import annotations

import json

from relaunch import bootstrap
from relaunch.simulate import wandb_payload
from tests.integration.test_functions import app, client, wandb_headers

__all__ = ["app"]  # the fixture, used by name


def test_the_attack_as_seen_is_a_422_naming_the_field_and_nothing_is_kept(app: bootstrap.App) -> None:
    payload = wandb_payload("CREATE_ARTIFACT", "acme/digits/digits-model:v1")
    payload["artifact_version_string"] = "attacker/other/evil-model:v0"
    body = json.dumps(payload).encode()
    reply = client("wandb_webhook").post("/", data=body, headers=wandb_headers(body))
    assert reply.status_code == 422 and reply.get_json()["field"] == "artifact_version_string"
    assert "entity_name" in reply.get_json()["error"]
    assert app.store.list_runs() == [] and app.store.list_deliveries() == []
