"""HyperparameterTuningJobs of the Vertex AI stand-in: create, get, list (label filter), cancel.

Each read of a job moves it one tick: PENDING -> RUNNING; new trials start up to parallelTrialCount until
maxTrialCount, or until a GRID_SEARCH has visited every point; once none is left running the job SUCCEEDED.
Parameters are chosen deterministically from the study spec (a grid in order, other algorithms by a golden-ratio
sequence through each range, on a log scale where the spec says so), so boundary tests can predict the winner.

Without a runner, trials are simulated: the ACTIVE ones end at the next tick, SUCCEEDED with a final measurement of
`tuning_objective(params)`, or INFEASIBLE when it answers None. With a runner (the gcp-emulated stack), each trial
really runs as Vertex runs it: the trial job spec with `--NAME=VALUE` arguments appended, baseOutputDirectory
<base>/<trial id> (so AIP_MODEL_DIR=<base>/<trial id>/model/), CLOUD_ML_TRIAL_ID, and CLOUD_ML_HP_METRIC_FILE naming
a file of its own (the processes share this host's /tmp), whose last cloudml-hypertune line becomes the trial's
final measurement when the process exits; a non-zero exit or no report makes it INFEASIBLE.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

from relaunch.emulated.vertex_runner import JobExit, job_environment
from relaunch.emulated.vertex_state import FINAL_STATES, ApiError, VertexState, filtered, now, tail

_GOLDEN = 0.6180339887498949
_CANCELLED_CODE = 1


class VertexTuning(VertexState):
    """hyperparameterTuningJobs.create/get/list/cancel with simulated trials."""

    def _create_tuning_job(self, project: str, loc: str, body: dict[str, Any]) -> dict[str, Any]:
        study = body.get("studySpec", {})
        if not body.get("displayName") or not study.get("metrics") or not study.get("parameters"):
            raise ApiError(400, "displayName, studySpec.metrics and studySpec.parameters are required")
        if not body.get("trialJobSpec", {}).get("workerPoolSpecs") or int(body.get("maxTrialCount", 0)) < 1:
            raise ApiError(400, "trialJobSpec.workerPoolSpecs and a positive maxTrialCount are required")
        job_id = str(next(self._ids))
        stamp = now()
        job = {**body, "name": self.name(loc, f"hyperparameterTuningJobs/{job_id}"), "state": "JOB_STATE_PENDING"}
        job.update(createTime=stamp, updateTime=stamp, trials=[])
        self.tuning_jobs[f"hyperparameterTuningJobs/{job_id}"] = job
        self._tuning_projects[f"hyperparameterTuningJobs/{job_id}"] = project
        return dict(job)

    def _get_tuning_job(self, resource: str) -> dict[str, Any]:
        job = self._get(self.tuning_jobs, resource)
        self._tick(job)
        return job

    def _list_tuning_jobs(self, query: dict[str, list[str]]) -> dict[str, Any]:
        return {"hyperparameterTuningJobs": filtered(self.tuning_jobs.values(), query)}

    def _cancel_tuning_job(self, resource: str) -> dict[str, Any]:
        job = self._get(self.tuning_jobs, resource)
        if job["state"] in FINAL_STATES:
            raise ApiError(400, f"job {resource} is already in state {job['state']}", "FAILED_PRECONDITION")
        stamp = now()
        for trial in job["trials"]:
            if trial["state"] == "ACTIVE":
                trial["state"] = "STOPPING"  # a cancelled job's trials never end on their own
                if self.runner is not None:
                    self.runner.kill(f"{resource}/trials/{trial['id']}")
        job.update(state="JOB_STATE_CANCELLED", endTime=stamp, updateTime=stamp)
        job["error"] = {"code": _CANCELLED_CODE, "message": "CANCELED"}
        return {}

    def _tick(self, job: dict[str, Any]) -> None:
        if job["state"] in FINAL_STATES:
            return
        stamp = now()
        job.update(state="JOB_STATE_RUNNING", updateTime=stamp)
        job.setdefault("startTime", stamp)
        metric = job["studySpec"]["metrics"][0]["metricId"]
        for trial in job["trials"]:
            if trial["state"] == "ACTIVE" and self.runner is None:
                self._end_trial(trial, metric, stamp, self.tuning_objective(_params(trial)))
        points = _points(job["studySpec"])
        budget = int(job["maxTrialCount"])
        if points is not None:
            budget = min(budget, len(points))
        running = sum(t["state"] == "ACTIVE" for t in job["trials"])
        while running < int(job.get("parallelTrialCount") or 1) and len(job["trials"]) < budget:
            n = len(job["trials"])
            params = points[n] if points is not None else _sample(job["studySpec"], n)
            trial = {
                "id": str(n + 1),
                "state": "ACTIVE",
                "parameters": [{"parameterId": k, "value": v} for k, v in params.items()],
                "startTime": stamp,
                "customJob": self.name(job["name"].split("/")[3], f"customJobs/{next(self._ids)}"),
            }
            job["trials"].append(trial)
            self._run_trial(job, trial)
            running += 1
        if running == 0:
            job.update(state="JOB_STATE_SUCCEEDED", endTime=stamp)

    def _end_trial(self, trial: dict[str, Any], metric: str, stamp: str, value: float | None, why: str = "") -> None:
        trial["endTime"] = stamp
        if value is None:
            trial.update(
                state="INFEASIBLE", infeasibleReason=why or "The trial's replica exited with a non-zero status"
            )
            return
        measurement = {"stepCount": "1", "metrics": [{"metricId": metric, "value": value}]}
        trial.update(state="SUCCEEDED", finalMeasurement=measurement)

    def _run_trial(self, job: dict[str, Any], trial: dict[str, Any]) -> None:
        """Start the trial's process, as Vertex starts the trial's CustomJob (nothing without a runner)."""
        if self.runner is None or self.storage_root is None:
            return
        spec = copy.deepcopy(job["trialJobSpec"])
        base = spec.get("baseOutputDirectory", {}).get("outputUriPrefix", "").rstrip("/")
        if base:
            spec["baseOutputDirectory"] = {"outputUriPrefix": f"{base}/{trial['id']}"}
        arguments = [f"--{k}={_argument(v)}" for k, v in _params(trial).items()]
        for pool in spec["workerPoolSpecs"]:
            container = pool.setdefault("containerSpec", {})
            container["args"] = [*container.get("args", []), *arguments]
        one, resource = {"jobSpec": spec}, tail(job["name"])
        report = Path(tempfile.mkdtemp(prefix="vertex-trial-")) / "output.metrics"
        env = job_environment(one, self._tuning_projects[resource], self.storage_root, self.runner.python)
        env |= {"CLOUD_ML_TRIAL_ID": trial["id"], "CLOUD_ML_HP_METRIC_FILE": str(report)}
        key = f"{resource}/trials/{trial['id']}"
        self.runner.start(
            key, one, env, lambda: None, lambda end: self._trial_exited(resource, trial["id"], report, end)
        )

    def _trial_exited(self, resource: str, trial_id: str, report: Path, end: JobExit) -> None:
        """The trial's process ended: its last hypertune line is its final measurement."""
        with self.lock:
            job = self.tuning_jobs[resource]
            trial = next(t for t in job["trials"] if t["id"] == trial_id)
            metric = job["studySpec"]["metrics"][0]["metricId"]
            if trial["state"] != "ACTIVE":  # cancelled: it stays STOPPING, as the job it belonged to ended
                trial["endTime"] = now()
            elif end.code != 0:
                self._end_trial(trial, metric, now(), None, f"exited with {end.code}: {end.stderr_tail[-500:]}")
            else:
                value = _reported(report, metric)
                self._end_trial(trial, metric, now(), value, f"the trial reported no {metric}")
        shutil.rmtree(report.parent, ignore_errors=True)


def _params(trial: dict[str, Any]) -> dict[str, Any]:
    return {p["parameterId"]: p["value"] for p in trial["parameters"]}


def _argument(value: Any) -> str:
    """A parameter as Vertex passes it on the command line (an integral number without its `.0`)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _reported(report: Path, metric: str) -> float | None:
    """The value of `metric` on the last line of a cloudml-hypertune file (None if absent or unreadable)."""
    try:
        lines = report.read_text().splitlines()
        value = float(json.loads(lines[-1])[metric]) if lines else None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return value if value is not None and math.isfinite(value) else None


def _values(spec: dict[str, Any]) -> list[Any] | None:
    """Every value of a listable parameter (INTEGER, DISCRETE, CATEGORICAL); None for a DOUBLE."""
    if "integerValueSpec" in spec:
        low, high = int(spec["integerValueSpec"]["minValue"]), int(spec["integerValueSpec"]["maxValue"])
        return [float(v) for v in range(low, high + 1)]
    if "discreteValueSpec" in spec:
        return list(spec["discreteValueSpec"]["values"])
    if "categoricalValueSpec" in spec:
        return list(spec["categoricalValueSpec"]["values"])
    return None


def _points(study: dict[str, Any]) -> list[dict[str, Any]] | None:
    """A GRID_SEARCH's points in order (None for other algorithms); 400 if a parameter cannot be listed."""
    if study.get("algorithm") != "GRID_SEARCH":
        return None
    names = [p["parameterId"] for p in study["parameters"]]
    lists = [_values(p) for p in study["parameters"]]
    if any(values is None for values in lists):
        raise ApiError(400, "To use grid search, all parameters must be INTEGER, CATEGORICAL, or DISCRETE")
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*[v or [] for v in lists])]


def _sample(study: dict[str, Any], n: int) -> dict[str, Any]:
    """Trial n's parameters: the n-th step of a golden-ratio sequence through each parameter's range."""
    fraction = ((n + 1) * _GOLDEN) % 1.0
    chosen: dict[str, Any] = {}
    for spec in study["parameters"]:
        values = _values(spec)
        if values is not None:
            chosen[spec["parameterId"]] = values[int(fraction * len(values)) % len(values)]
            continue
        low, high = float(spec["doubleValueSpec"]["minValue"]), float(spec["doubleValueSpec"]["maxValue"])
        if spec.get("scaleType") == "UNIT_LOG_SCALE":
            chosen[spec["parameterId"]] = math.exp(math.log(low) + fraction * (math.log(high) - math.log(low)))
        else:
            chosen[spec["parameterId"]] = low + fraction * (high - low)
    return chosen
