"""Sweeps of the W&B stand-in: what the SDK sends to create, read and cancel a sweep on Launch, and W&B's side.

W&B's side, as the stand-in plays it: creating a sweep with a `launchScheduler` puts the scheduler's launch spec on
the named queue (its WANDB_SWEEP_ID placeholder replaced by the sweep's name), PENDING. Each read of the sweep
(GetSweep) moves it one tick, as W&B's scheduler would: the scheduler is claimed and the sweep RUNNING; new trials
are enqueued as Launch items of the sweep's `image_uri` (with the `launch` section's resource_args, the sweep's
`command` with `${args}` expanded and the parameters in the run config) while fewer than `num_workers` are active,
until `run_cap` (or a grid's last point); once every trial ended, the sweep is FINISHED. A grid visits its points in
order; random and bayes draw from a generator seeded by the sweep's name and trial number, so a test can predict
every trial. `run_trials` plays the launch agent that runs the trials: it claims waiting items (their runs start)
and ends running ones with the summary metric a test's `score(params)` gives (None: the run fails).
"""

from __future__ import annotations

import base64
import functools
import itertools
import json
import math
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from relaunch.emulated.wandb_graphql import parse, paths
from relaunch.emulated.wandb_state import NOW, WandbState, operation

TRIAL_SECONDS = 5  # how long each simulated trial runs, in the runs' timestamps
_ACTIVE = ("PENDING", "CLAIMED")


@operation("UpsertSweep")
def _upsert(fake: WandbState, variables: dict[str, Any]) -> dict[str, Any]:
    """Create a sweep (and queue its scheduler), or, given an id, change its state (`wandb sweep --cancel`)."""
    if variables.get("id"):
        found = [s for s in fake.sweeps.values() if s["id"] == variables["id"]]
        if not found:
            raise LookupError(f"sweep {variables['id']!r} not found")
        if variables.get("state"):
            found[0]["state"] = variables["state"]
        return {"upsertSweep": {"sweep": {"name": found[0]["name"]}}}
    entity, project = variables["entityName"], variables["projectName"]
    name = f"sw{len(fake.sweeps) + 1:06d}"
    config = yaml.safe_load(variables["config"])
    scheduler = json.loads(variables.get("launchScheduler") or "null")
    sweep = {
        "id": base64.b64encode(f"Sweep:{name}".encode()).decode(),
        "name": name,
        "displayName": variables.get("displayName"),
        "description": variables.get("description"),
        "config": variables["config"],
        "method": config.get("method"),
        "state": variables.get("state") or "RUNNING",
        "entity": entity,
        "project": project,
        "createdAt": NOW,
        "scheduler": None,
    }
    if scheduler is not None:
        if (entity, scheduler["queue"]) not in fake.queues:
            raise LookupError(f"run queue {scheduler['queue']!r} not found")
        spec = json.loads(scheduler["run_spec"])
        spec["run_id"] = name  # W&B names the scheduler's run after the sweep
        sweep["scheduler"] = _enqueue(fake, (entity, scheduler["run_queue_project"], scheduler["queue"]), spec)
    fake.sweeps[name] = sweep
    project_node = {"id": "UHJvamVjdDox", "name": project, "entity": {"id": "RW50aXR5OjE=", "name": entity}}
    return {"upsertSweep": {"sweep": {"name": name, "project": project_node}, "configValidationWarnings": []}}


@operation("GetSweeps")
def _sweeps(fake: WandbState, variables: dict[str, Any]) -> dict[str, Any]:
    wanted = json.loads(variables.get("filters") or "{}")
    found = [
        _fragment(s)
        for s in fake.sweeps.values()
        if (s["entity"], s["project"]) == (variables["entity"], variables["project"])
        and all(_fragment(s).get(k) == v for k, v in wanted.items())
    ]
    page = {"endCursor": None, "hasNextPage": False, "__typename": "PageInfo"}
    return {"project": {"totalSweeps": len(found), "sweeps": {"pageInfo": page, "edges": [{"node": n} for n in found]}}}


@operation("GetSweep")
def _sweep(fake: WandbState, variables: dict[str, Any]) -> dict[str, Any]:
    sweep = fake.sweeps.get(variables["name"])
    if sweep is None or (sweep["entity"], sweep["project"]) != (variables["entity"], variables["project"]):
        return {"project": {"sweep": None}}
    tick(fake, sweep)
    return {"project": {"sweep": _fragment(sweep)}}


@operation("SweepWithRuns")
def _sweep_with_runs(fake: WandbState, variables: dict[str, Any]) -> dict[str, Any]:
    """What the SDK's `_set_sweep_state` reads before it changes a sweep's state (cancel)."""
    sweep = fake.sweeps.get(variables["sweep"])
    if sweep is None:
        return {"project": {"sweep": None}}
    runs = [_run_node(r) for r in _runs_of(fake, sweep["name"])]
    node = {**_fragment(sweep), "controller": None, "scheduler": None, "earlyStopJobRunning": False}
    return {"project": {"sweep": {**node, "heartbeatAt": NOW, "runs": {"edges": [{"node": r} for r in runs]}}}}


@operation("Runs")
def _runs(fake: WandbState, variables: dict[str, Any]) -> dict[str, Any]:
    """The project's runs of one sweep (the only filter relaunch sends), oldest first, a page at a time."""
    clauses = json.loads(variables.get("filters") or "{}").get("$and") or [{}]
    sweep = clauses[0].get("sweep")
    runs = sorted(_runs_of(fake, sweep), key=lambda r: (r["createdAt"], r["name"])) if sweep else []
    start = int(variables.get("cursor") or 0)
    size = int(variables.get("perPage") or 50)
    page = runs[start : start + size]
    edges = [{"node": {"projectId": "1", **_run_node(r)}, "cursor": str(start + i + 1)} for i, r in enumerate(page)]
    info = {"endCursor": str(start + len(page)), "hasNextPage": start + size < len(runs)}
    project = {"internalId": "1", "runCount": len(runs), "readOnly": False}
    return {"project": {**project, "runs": {"edges": edges, "pageInfo": info}}}


def tick(fake: WandbState, sweep: dict[str, Any]) -> None:
    """One step of W&B's scheduler for the sweep: start it, enqueue trials, finish it."""
    scheduler = fake.items.get(sweep["scheduler"] or "")
    if sweep["state"] == "PENDING" and scheduler is not None:
        fake.claim(scheduler["id"], sweep["name"], "running")  # a launch agent runs the scheduler
        sweep["state"] = "RUNNING"
    if sweep["state"] == "CANCELED" and sweep["name"] in fake.runs:
        fake.runs[sweep["name"]]["state"] = "finished"  # the scheduler sees the state and exits
    if sweep["state"] != "RUNNING" or scheduler is None:
        return
    config = yaml.safe_load(sweep["config"])
    run_config = json.loads(scheduler["runSpec"])["overrides"]["run_config"]
    trials = _trial_items(fake, sweep["name"])
    active = sum(1 for item in trials if _active(fake, item))
    points = _points(config)
    cap = min(int(config.get("run_cap") or len(points)), len(points))
    for number in range(len(trials), min(cap, len(trials) + int(run_config["scheduler"]["num_workers"]) - active)):
        _enqueue(fake, scheduler["queue"], _trial_spec(sweep, config, run_config, number, points[number]))
    if len(_trial_items(fake, sweep["name"])) >= cap and not any(
        _active(fake, i) for i in _trial_items(fake, sweep["name"])
    ):
        sweep["state"] = "FINISHED"
        fake.runs[sweep["name"]]["state"] = "finished"


def run_trials(fake: WandbState, score: Callable[[dict[str, Any]], float | None]) -> None:
    """The launch agent running the sweeps' trials: ends running trial runs (finished with the sweep's metric as
    `score(params)` gives it, failed on None), then claims waiting trial items (their runs start)."""
    with fake.lock:
        for sweep in fake.sweeps.values():
            metric = yaml.safe_load(sweep["config"])["metric"]["name"]
            for run in _runs_of(fake, sweep["name"]):
                if run["state"] == "running":
                    params = {
                        k: v["value"] for k, v in json.loads(run["config"]).items() if not k.startswith("relaunch_")
                    }
                    value = score(params)
                    done = _stamp(run["createdAt"], TRIAL_SECONDS)
                    summary = {metric: value, "_runtime": TRIAL_SECONDS} if value is not None else {"_runtime": 1}
                    run.update(state="finished" if value is not None else "failed", heartbeatAt=done)
                    run["summaryMetrics"] = json.dumps(summary)
            for item in _trial_items(fake, sweep["name"]):
                if item["state"] == "PENDING":
                    _start_trial(fake, sweep, item)


def _start_trial(fake: WandbState, sweep: dict[str, Any], item: dict[str, Any]) -> None:
    spec = json.loads(item["runSpec"])
    name = spec["run_id"]
    fake.claim(item["id"], name, "running")
    config = {k: {"value": v} for k, v in spec["overrides"]["run_config"].items() if k not in ("launch", "scheduler")}
    created = _stamp(NOW, 10 * len(_runs_of(fake, sweep["name"])))
    fake.runs[name].update(sweepName=sweep["name"], config=json.dumps(config), createdAt=created, heartbeatAt=created)


def _trial_spec(
    sweep: dict[str, Any], config: dict[str, Any], run_config: dict[str, Any], number: int, params: dict[str, Any]
) -> dict[str, Any]:
    """A trial's launch spec, as W&B's scheduler builds it (`launch_add` with the sweep's image and id)."""
    args = [f"--{k}={v}" for k, v in params.items()]
    command = [a for part in config.get("command") or [] for a in (args if part == "${args}" else [part])]
    keys = {k: v for k, v in run_config.items() if k.startswith("relaunch_")}
    return {
        "entity": sweep["entity"],
        "project": sweep["project"],
        "run_id": f"{sweep['name']}t{number:03d}",
        "docker": {"docker_image": config["image_uri"]},
        "resource_args": run_config["launch"]["resource_args"],
        "overrides": {"entry_point": command, "run_config": {**keys, **params}},
        "sweep_id": sweep["name"],
    }


def _points(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Every trial's parameters, in order: a grid's points, or seeded draws up to run_cap."""
    parameters: dict[str, dict[str, Any]] = config["parameters"]
    if config["method"] == "grid":
        names = list(parameters)
        return [
            dict(zip(names, combo, strict=True))
            for combo in itertools.product(*(parameters[n]["values"] for n in names))
        ]
    draws = []
    for number in range(int(config["run_cap"])):
        rng = random.Random(f"{config['name']}:{number}")
        draws.append({name: _draw(rng, p) for name, p in parameters.items()})
    return draws


def _draw(rng: random.Random, param: dict[str, Any]) -> Any:
    kind = param.get("distribution")
    if "values" in param:
        return rng.choice(param["values"])
    if kind == "uniform":
        return rng.uniform(param["min"], param["max"])
    if kind == "int_uniform":
        return rng.randint(param["min"], param["max"])
    value = math.exp(rng.uniform(math.log(param["min"]), math.log(param["max"])))
    return round(value) if kind == "q_log_uniform_values" else value


def _enqueue(fake: WandbState, queue: tuple[str, str, str], spec: dict[str, Any]) -> str:
    item_id = base64.b64encode(f"RunQueueItem:{len(fake.items) + 1}".encode()).decode()
    fake.items[item_id] = {
        "id": item_id,
        "state": "PENDING",
        "associatedRunId": None,
        "runSpec": json.dumps(spec),
        "priority": 2,
        "error": None,
        "queue": tuple(queue),
    }
    return item_id


def _trial_items(fake: WandbState, sweep: str) -> list[dict[str, Any]]:
    return [i for i in fake.items.values() if json.loads(i["runSpec"]).get("sweep_id") == sweep]


def _active(fake: WandbState, item: dict[str, Any]) -> bool:
    run = fake.runs.get(item.get("associatedRunId") or "")
    return item["state"] == "PENDING" or (run is not None and run["state"] in ("pending", "running"))


def _runs_of(fake: WandbState, sweep: str | None) -> list[dict[str, Any]]:
    return [r for r in fake.runs.values() if sweep is not None and r.get("sweepName") == sweep]


def _fragment(sweep: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "name", "displayName", "method", "state", "description", "config", "createdAt")
    return {
        "__typename": "Sweep",
        **{k: sweep[k] for k in keys},
        "bestLoss": None,
        "updatedAt": NOW,
        "runCount": 0,
        "runCountExpected": None,
    }


def _run_node(run: dict[str, Any]) -> dict[str, Any]:
    base = {"tags": [], "displayName": run["name"], "sweepName": None, "config": "{}", "group": None, "jobType": None}
    base |= {"commit": None, "readOnly": False, "description": None, "notes": None, "systemMetrics": "{}"}
    base |= {"historyLineCount": 0, "user": {"name": "ci", "username": "ci"}, "historyKeys": {}}
    return {**base, **run}


def _stamp(start: str, seconds: float) -> str:
    return (datetime.fromisoformat(start).replace(tzinfo=UTC) + timedelta(seconds=seconds)).strftime(
        "%Y-%m-%dT%H:%M:%S"
    )


@functools.cache
def built_paths() -> frozenset[tuple[str, ...]]:
    """The field paths of the mutation `_upsert_sweep` sends: the SDK assembles it at run time (its project
    selection is spliced in for a `_PROJECT_QUERY_` placeholder), so reading the SDK's source does not find them.
    The SDK's own function is run against a recorder here, which keeps what it sends."""
    from wandb.apis.public.sweeps import _upsert_sweep

    sent: list[str] = []

    class Recorder:
        def execute_graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
            sent.append(query)
            return {"upsertSweep": {"sweep": {"name": "recorded"}, "configValidationWarnings": []}}

    class Api:
        _service_api = Recorder()
        settings: dict[str, Any] = {"entity": "e", "project": "p"}

    _upsert_sweep(Api(), {"method": "random"}, launch_scheduler="{}", entity="e", project="p")  # type: ignore[arg-type]
    return frozenset(path for query in sent for path in paths(parse(query)))
