"""W&B sweeps on Launch (a `SweepBackend`): what `wandb launch-sweep` does, through the SDK bound to a base_url.

`wandb launch-sweep` (wandb/cli/cli.py) does not enqueue anything itself: it builds the scheduler's launch spec
(`construct_launch_spec` with the scheduler's placeholder uri and `wandb scheduler WANDB_SWEEP_ID` entry point) and
creates the sweep with `_upsert_sweep(..., launch_scheduler={queue, run_queue_project, run_spec}, state="PENDING")`;
W&B puts the scheduler on the queue, a launch agent runs it, and the scheduler enqueues each trial as a Launch item
of the sweep's `image_uri` with the sweep's `launch` section (queue, resource_args). This adapter does the same.

A sweep is found again by its display name, which carries a digest of the request's key, so starting it twice
creates one sweep. Trials are the sweep's runs in creation order (the SDK's `Runs` query, `+created_at`), so a
trial's number never changes. W&B passes a trial's parameters as `--NAME=VALUE` arguments (the sweep's `command`
ends in `${args}`) and in the run's config; the trial writes its model to $RELAUNCH_TRIAL_OUTPUT/$WANDB_RUN_ID/model
(Launch sets WANDB_RUN_ID in every run it starts), so the winner's model is found at <trial output_dir>/model.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from typing import Any

from relaunch.adapters.wandb import translate_errors
from relaunch.adapters.wandb.launch import QUEUE_PROJECT, WandbLaunchBackend, _timestamp, resource_args, run_config
from relaunch.adapters.wandb.sweep_config import (
    TRIAL_STATES,
    about,
    check_names,
    json_object,
    sweep_config,
    sweep_state,
    trial_params,
)
from relaunch.domain.ports import TransientError
from relaunch.domain.spec_sweep import SweepSpec
from relaunch.domain.sweep import SweepRequest, SweepStatus, Trial, TrialState

OUTPUT_VARIABLE = "RELAUNCH_TRIAL_OUTPUT"  # the folder under which each trial writes <W&B run id>/model
_SWEEP_NAME = re.compile(r"^[a-z0-9]{8}$")  # W&B's sweep ids
_PAGE = 50
_MAX_PAGES = 40  # a sweep has at most 1000 trials


class WandbLaunchSweeps:
    """A `SweepBackend` on W&B sweeps run by a sweep scheduler on the Launch queue of a `WandbLaunchBackend`."""

    def __init__(self, launch: WandbLaunchBackend) -> None:
        self.launch = launch  # its API, entity, project, queue and the resource arguments every trial runs with

    def __repr__(self) -> str:
        return f"WandbLaunchSweeps({self.launch!r})"

    def owns(self, job_id: str) -> bool:
        parts = job_id.split("/")
        return (
            len(parts) == 3
            and parts[:2] == [self.launch.entity, self.launch.project]
            and bool(_SWEEP_NAME.match(parts[2]))
        )

    def start(self, request: SweepRequest) -> str:
        """Create the sweep (its scheduler queued by W&B) unless one with this key exists; returns its id."""
        check_names(request.sweep)  # before any request: W&B would misread such a name
        trial = request.trial
        if not trial.image or not trial.command:
            raise ValueError(f"sweep {request.key}: the trial needs an image and a command for W&B Launch")
        if trial.output_dir is None:
            raise ValueError(f"sweep {request.key}: the trial needs output_dir: each trial writes its model under it")
        display = f"relaunch-{hashlib.sha256(request.key.encode()).hexdigest()[:24]}"
        existing = self._find(display)
        if existing is not None:
            return self._id(existing)
        if trial.not_before is not None and time.time() < trial.not_before:
            due = time.strftime("%H:%M:%S", time.localtime(trial.not_before))
            raise TransientError(f"sweep {request.key} is a retry not due before {due}")
        base = f"{trial.output_dir.rstrip('/')}/trials"
        about = {"relaunch_key": request.key, "trial_output": base, "sweep": request.sweep.model_dump(mode="json")}
        config = sweep_config(request.sweep, name=display, description=json.dumps(about), image=trial.image)
        config["command"] = [*trial.command, "${args}"]
        scheduler = json.dumps(
            {
                "queue": self.launch.queue,
                "run_queue_project": QUEUE_PROJECT,
                "run_spec": json.dumps(self._scheduler_spec(request)),
            }
        )
        from wandb.apis.public.sweeps import _upsert_sweep

        with translate_errors(f"W&B: create sweep {display}"), _process_defaults_kept():
            sweep, _warnings = _upsert_sweep(
                self.launch.api,
                config,
                project=self.launch.project,
                entity=self.launch.entity,
                launch_scheduler=scheduler,
                state="PENDING",
                display_name=display,
            )
        return self._id(str(sweep["name"]))

    def status(self, sweep_id: str) -> SweepStatus:
        """The sweep and its runs as trials (KeyError if the id is not one of this backend's sweeps)."""
        name = self._name(sweep_id)
        sweep = self._sweep(name)
        if sweep is None:
            raise KeyError(sweep_id)
        spec, base = about(sweep)
        wandb_state = str(sweep.get("state") or "").upper()
        trials = [self._trial(spec, n, run, base, wandb_state) for n, run in enumerate(self._runs(name))]
        state, message = sweep_state(spec, wandb_state, trials)
        last = next((t.message for t in reversed(trials) if t.state == "failed" and t.message), "")
        return SweepStatus(
            id=sweep_id,
            state=state,
            spec=spec,
            trials=trials,
            message=message,
            log_tail=last if state == "failed" else "",
        )

    def cancel(self, sweep_id: str) -> None:
        """Set the sweep CANCELED (its scheduler stops), remove its waiting queue items and stop its running runs."""
        from wandb.apis.public.sweeps import _set_sweep_state

        name = self._name(sweep_id)
        sweep = self._sweep(name)
        if sweep is None:
            raise KeyError(sweep_id)
        if str(sweep.get("state") or "").upper() in ("RUNNING", "PAUSED", "PENDING"):
            with translate_errors(f"W&B: cancel sweep {sweep_id}"):
                _set_sweep_state(
                    self.launch.api, name, "CANCELED", entity=self.launch.entity, project=self.launch.project
                )
        for item_id in self._items_of(name):
            with translate_errors(f"W&B Launch: remove an item of sweep {sweep_id}"):
                self.launch.api.queued_run(
                    self.launch.entity, self.launch.project, self.launch.queue, item_id, QUEUE_PROJECT
                ).delete()
        for run in self._runs(name):
            if TRIAL_STATES.get(str(run.get("state")), "failed") == "running":
                with translate_errors(f"W&B: stop run {run.get('name')}"):
                    self.launch.api.run(f"{self.launch.entity}/{self.launch.project}/{run['name']}").stop()

    # -- what is sent ------------------------------------------------------------------------------------------

    def _scheduler_spec(self, request: SweepRequest) -> dict[str, Any]:
        """The scheduler's launch spec, as `wandb launch-sweep` builds it for W&B's own scheduler."""
        from wandb.sdk.launch.sweeps.scheduler import Scheduler
        from wandb.sdk.launch.utils import construct_launch_spec

        base = f"{(request.trial.output_dir or '').rstrip('/')}/trials"  # AIP_MODEL_DIR's base: not a trial's own
        trial = request.trial.model_copy(
            update={"output_dir": base, "env": {**request.trial.env, OUTPUT_VARIABLE: base}}
        )
        launch = {"queue": self.launch.queue, "resource_args": resource_args(trial, self.launch.staging_bucket)}
        overrides = {
            "run_config": {
                "launch": launch,
                "scheduler": {"num_workers": request.sweep.parallel_trials},
                **run_config(request.trial.model_copy(update={"key": request.key, "step": "sweep"})),
            },
            "args": ["--queue", repr(self.launch.queue), "--project", repr(self.launch.project)],
        }
        with translate_errors(f"W&B Launch: scheduler spec of {request.key}"):
            spec: dict[str, Any] = construct_launch_spec(
                uri=Scheduler.PLACEHOLDER_URI,
                job=None,
                api=self.launch.api,
                name="Scheduler.WANDB_SWEEP_ID",
                project=self.launch.project,
                entity=self.launch.entity,
                docker_image=None,
                resource="local-process",
                entry_point=list(Scheduler.ENTRYPOINT),
                version=None,
                resource_args={},
                launch_config={"overrides": overrides},
                run_id="WANDB_SWEEP_ID",
                repository=None,
                author=None,
            )
        return spec

    # -- what is read ------------------------------------------------------------------------------------------

    def _find(self, display: str) -> str | None:
        """The name of the oldest sweep of the project with this display name, if any (the SDK's GetSweeps)."""
        from wandb.apis._generated import GET_SWEEPS_GQL

        found: list[dict[str, Any]] = []
        cursor = None
        for _ in range(_MAX_PAGES):
            variables = {
                "project": self.launch.project,
                "entity": self.launch.entity,
                "perPage": _PAGE,
                "filters": json.dumps({"displayName": display}),
                "cursor": cursor,
            }
            project = self._execute(GET_SWEEPS_GQL, variables, "list sweeps").get("project") or {}
            page = project.get("sweeps") or {}
            found += [e["node"] for e in page.get("edges") or [] if (e.get("node") or {}).get("displayName") == display]
            info = page.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                break
            cursor = info.get("endCursor")
        named = [n for n in found if isinstance(n.get("name"), str) and _SWEEP_NAME.match(n["name"])]
        oldest = min(named, key=lambda n: (str(n.get("createdAt") or ""), n["name"]), default=None)
        return None if oldest is None else str(oldest["name"])

    def _sweep(self, name: str) -> dict[str, Any] | None:
        from wandb.apis._generated import GET_SWEEP_GQL

        variables = {"entity": self.launch.entity, "project": self.launch.project, "name": name}
        sweep: dict[str, Any] | None = (
            self._execute(GET_SWEEP_GQL, variables, f"read sweep {name}").get("project") or {}
        ).get("sweep")
        return sweep

    def _runs(self, name: str) -> list[dict[str, Any]]:
        """The sweep's runs, oldest first (the SDK's Runs query, as `Sweep.runs` sends it, with full runs)."""
        from wandb.apis.public.runs import _create_runs_query

        query, runs, cursor = _create_runs_query(lazy=False), [], None
        for _ in range(_MAX_PAGES):
            variables = {
                "project": self.launch.project,
                "entity": self.launch.entity,
                "order": "+created_at",
                "filters": json.dumps({"$and": [{"sweep": name}]}),
                "perPage": _PAGE,
                "cursor": cursor,
            }
            page = (self._execute(query, variables, f"list runs of sweep {name}").get("project") or {}).get("runs")
            nodes = [e.get("node") or {} for e in (page or {}).get("edges") or []]
            runs += [n for n in nodes if n and n.get("name") != name]  # not the scheduler's own run
            info = (page or {}).get("pageInfo") or {}
            if not info.get("hasNextPage"):
                break
            cursor = info.get("endCursor")
        return runs

    def _items_of(self, name: str) -> list[str]:
        """The ids of the sweep's items still waiting on the queue (its trials', and its scheduler's)."""
        ids = [spec["_item"] for spec in self._specs_on_queue() if name in (spec.get("sweep_id"), spec.get("run_id"))]
        waiting = []
        for item_id in ids:
            item = self.launch._item(self.launch._job_id(str(item_id)))  # the SDK's GetRunQueueItem: its state
            if item is not None and item.get("state") == "PENDING":
                waiting.append(str(item_id))
        return waiting

    def _specs_on_queue(self) -> list[dict[str, Any]]:
        from relaunch.adapters.wandb.launch import _ITEMS

        variables = {"projectName": QUEUE_PROJECT, "entityName": self.launch.entity, "runQueue": self.launch.queue}
        queue = (self._execute(_ITEMS, variables, "list queue items").get("project") or {}).get("runQueue")
        if queue is None:
            raise ValueError(f"W&B Launch queue {self.launch.entity}/{self.launch.queue} not found")
        specs = []
        for edge in (queue.get("runQueueItems") or {}).get("edges") or []:
            node = edge.get("node") or {}
            try:
                spec = json.loads(node.get("runSpec") or "{}")
            except ValueError:
                continue
            if isinstance(spec, dict):
                specs.append({**spec, "_item": node.get("id")})
        return specs

    def _trial(self, spec: SweepSpec, number: int, run: dict[str, Any], base: str, sweep: str) -> Trial:
        """A W&B run of the sweep as a Trial (its config and summary are input from outside)."""
        name = str(run.get("name") or "")
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
            raise ValueError(f"W&B sent a sweep run named {name[:40]!r}")
        state: TrialState = TRIAL_STATES.get(str(run.get("state")), "failed")
        summary = json_object(run.get("summaryMetrics"))
        value = summary.get(spec.objective.metric)
        objective = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        objective = objective if objective is not None and math.isfinite(objective) else None
        message = "" if state != "failed" else f"W&B run {name} {run.get('state')}"
        if state == "succeeded" and objective is None:
            state, message = "failed", f"the trial reported no {spec.objective.metric}"
        if state == "running" and sweep == "CANCELED":
            state = "cancelled"
        started = _timestamp(run.get("createdAt"))
        return Trial(
            number=number,
            params=trial_params(spec, json_object(run.get("config"))),
            state=state,
            objective=objective if state == "succeeded" else None,
            output_dir=f"{base.rstrip('/')}/{name}",
            job_id=f"{self.launch.entity}/{self.launch.project}/{name}",
            started_at=started,
            finished_at=_timestamp(run.get("heartbeatAt")) if state != "running" else None,
            message=message,
        )

    def _execute(self, query: str, variables: dict[str, Any], what: str) -> dict[str, Any]:
        with translate_errors(f"W&B: {what}"):
            data: dict[str, Any] = self.launch.api._service_api.execute_graphql(query, variables) or {}
        return data

    def _name(self, sweep_id: str) -> str:
        if not self.owns(sweep_id):
            raise KeyError(sweep_id)
        return sweep_id.rsplit("/", 1)[1]

    def _id(self, name: str) -> str:
        return f"{self.launch.entity}/{self.launch.project}/{name}"


class _process_defaults_kept:
    """`_upsert_sweep` makes the sweep's project and entity the process's W&B defaults (WANDB_PROJECT, WANDB_ENTITY):
    one process serves many pipelines, so they are put back."""

    names = ("WANDB_PROJECT", "WANDB_ENTITY")

    def __enter__(self) -> None:
        self.saved = {name: os.environ.get(name) for name in self.names}

    def __exit__(self, *exc: object) -> None:
        for name, value in self.saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
