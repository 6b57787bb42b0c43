"""The W&B stand-in's answers about the viewer, projects, Launch queues, their items and runs."""

from __future__ import annotations

import base64
import json
from typing import Any

from relaunch.emulated.wandb_state import WandbState, operation


@operation("Viewer")
def _viewer(fake: WandbState, variables: dict[str, Any]) -> dict[str, Any]:
    viewer: dict[str, Any] = {
        "id": "VXNlcjox",
        "entity": "team",
        "username": "ci",
        "email": None,
        "flags": "{}",
        "teams": {"edges": []},
    }
    return {"viewer": viewer}


@operation("GetDefaultEntity")
def _default_entity(fake: WandbState, variables: dict[str, Any]) -> dict[str, Any]:
    return {"viewer": {"__typename": "User", "id": "VXNlcjox", "entity": "team"}}


@operation("ServerFeaturesQuery")
def _features(fake: WandbState, variables: dict[str, Any]) -> dict[str, Any]:
    return {"serverInfo": {"features": []}}


@operation("pushToRunQueueByName")
def _push(fake: WandbState, variables: dict[str, Any]) -> dict[str, Any]:
    if (variables["entityName"], variables["queueName"]) not in fake.queues:
        raise LookupError(f"run queue {variables['queueName']!r} not found")
    item_id = base64.b64encode(f"RunQueueItem:{len(fake.items) + 1}".encode()).decode()
    spec = json.loads(variables["runSpec"])
    fake.items[item_id] = {
        "id": item_id,
        "state": "PENDING",
        "associatedRunId": None,
        "runSpec": json.dumps(spec),
        "priority": variables.get("priority"),
        "error": None,
        "queue": (variables["entityName"], variables["projectName"], variables["queueName"]),
    }
    return {"pushToRunQueueByName": {"runQueueItemId": item_id, "runSpec": json.dumps(spec)}}


def _queue(fake: WandbState, variables: dict[str, Any], name_key: str) -> list[dict[str, Any]]:
    wanted = (variables["entityName"], variables["projectName"], variables[name_key])
    return [item for item in fake.items.values() if item["queue"] == wanted]


def _public(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != "queue"}


@operation("RelaunchQueueItems")
def _items(fake: WandbState, variables: dict[str, Any]) -> dict[str, Any]:
    if (variables["entityName"], variables["runQueue"]) not in fake.queues:
        return {"project": {"runQueue": None}}
    edges = [{"node": _public(item)} for item in _queue(fake, variables, "runQueue")]
    return {"project": {"runQueue": {"runQueueItems": {"edges": edges}}}}


@operation("GetRunQueueItem")
def _item(fake: WandbState, variables: dict[str, Any]) -> dict[str, Any]:
    """The SDK's QueuedRun asks for one item by id, or (its fallback) lists them all."""
    items = _queue(fake, variables, "runQueue")
    if "itemId" not in variables:
        return {"project": {"runQueue": {"runQueueItems": {"edges": [{"node": _public(i)} for i in items]}}}}
    found = [i for i in items if i["id"] == variables["itemId"]]
    return {"project": {"runQueue": {"runQueueItem": _public(found[0]) if found else None}}}


@operation("fetchRunQueuesFromProject")
def _queue_id(fake: WandbState, variables: dict[str, Any]) -> dict[str, Any]:
    queue_id = base64.b64encode(f"RunQueue:{variables['runQueueName']}".encode()).decode()
    return {"project": {"runQueue": {"id": queue_id}}}


@operation("CreateProject")
def _create_project(fake: WandbState, variables: dict[str, Any]) -> dict[str, Any]:
    wanted = (variables["input"]["entityName"], variables["input"]["name"])
    inserted = wanted not in fake.projects
    fake.projects.add(wanted)
    project = {"id": "UHJvamVjdDox", "name": wanted[1], "entityName": wanted[0], "description": None}
    project |= {"access": "PROJECT", "views": "{}"}
    return {"result": {"project": project, "model": project, "inserted": inserted}}


@operation("UpsertRunQueue")
def _upsert_queue(fake: WandbState, variables: dict[str, Any]) -> dict[str, Any]:
    if (variables["entityName"], variables["projectName"]) not in fake.projects:
        raise LookupError(f"project {variables['projectName']!r} not found")
    key = (variables["entityName"], variables["queueName"])
    fake.queues.add(key)
    fake.queue_configs[key] = {
        "resource": variables["resourceType"],
        "config": variables["resourceConfig"],
        "prioritizationMode": variables.get("prioritizationMode"),
        "configID": str(len(fake.queue_configs) + 1),
    }
    return {"upsertRunQueue": {"success": True, "configSchemaValidationErrors": []}}


@operation("GetRunQueueMetadata")
def _queue_metadata(fake: WandbState, variables: dict[str, Any]) -> dict[str, Any]:
    key = (variables["entityName"], variables["runQueue"])
    if key not in fake.queues:
        return {"project": {"runQueue": None}}
    config = fake.queue_configs.get(key, {})
    queue: dict[str, Any] = {"id": base64.b64encode(f"RunQueue:{key[1]}".encode()).decode(), "access": "PROJECT"}
    queue |= {"defaultResourceConfigID": config.get("configID"), "externalLinks": {"links": []}}
    return {"project": {"runQueue": {**queue, "prioritizationMode": config.get("prioritizationMode", "DISABLED")}}}


@operation("GetDefaultResourceConfig")
def _resource_config(fake: WandbState, variables: dict[str, Any]) -> dict[str, Any]:
    found = [c for (entity, _), c in fake.queue_configs.items() if c["configID"] == variables["id"]]
    if variables["entityName"] not in {e for e, _ in fake.queue_configs} or not found:
        return {"entity": {"defaultResourceConfig": None}}
    config = {"config": found[0]["config"], "resource": found[0]["resource"], "templateVariables": []}
    return {"entity": {"defaultResourceConfig": config}}


@operation("DeleteFromRunQueue")
def _delete_item(fake: WandbState, variables: dict[str, Any]) -> dict[str, Any]:
    found = fake.items.pop(variables["runQueueItemId"], None)
    return {"deleteFromRunQueue": {"success": found is not None, "clientMutationId": None}}


@operation("Run")
def _run(fake: WandbState, variables: dict[str, Any]) -> dict[str, Any]:
    run = fake.runs.get(variables["name"])
    if run is None:
        return {"project": {"run": None}}
    full = {
        "projectId": "1",
        "tags": [],
        "displayName": run["name"],
        "sweepName": None,
        "config": "{}",
        "group": None,
        "jobType": None,
        "commit": None,
        "readOnly": False,
        "description": None,
        "notes": None,
        "systemMetrics": "{}",
        "historyLineCount": 0,
        "user": {"name": "ci", "username": "ci"},
        "historyKeys": {},
        **run,
    }
    return {"project": {"run": full}}


@operation("StopRun")
def _stop(fake: WandbState, variables: dict[str, Any]) -> dict[str, Any]:
    fake.stopped.append(variables["id"])
    return {"stopRun": {"success": True}}
