"""CustomJobs of the Vertex AI stand-in: create, cancel and, with a runner, really run them."""

from __future__ import annotations

from typing import Any

from relaunch.emulated.vertex_runner import JobExit, job_environment
from relaunch.emulated.vertex_state import FINAL_STATES, ApiError, VertexState, now

# Vertex's google.rpc code for a job whose replica exited non-zero (INVALID_ARGUMENT) and for a cancel (CANCELLED).
_FAILED_CODE = 3
_CANCELLED_CODE = 1


class VertexJobs(VertexState):
    """jobs.create/cancel; with `runner`, PENDING -> RUNNING -> SUCCEEDED/FAILED/CANCELLED as the process goes."""

    def _create_job(self, project: str, loc: str, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("displayName") or not body.get("jobSpec", {}).get("workerPoolSpecs"):
            raise ApiError(400, "displayName and jobSpec.workerPoolSpecs are required")
        job_id = str(next(self._ids))
        stamp = now()
        job = {**body, "name": self.name(loc, f"customJobs/{job_id}"), "state": "JOB_STATE_PENDING"}
        job.update(createTime=stamp, updateTime=stamp)
        key = f"customJobs/{job_id}"
        self.jobs[key] = job
        answer = dict(job)  # PENDING, as Vertex answers a create; the runner's thread moves it on
        if self.runner is not None and self.storage_root is not None:
            env = job_environment(job, project, self.storage_root, self.runner.python)
            self.runner.start(
                key, dict(job), env, lambda: self._job_started(key), lambda end: self._job_exited(key, end)
            )
        return answer

    def _cancel_job(self, resource: str) -> dict[str, Any]:
        job = self._get(self.jobs, resource)
        if job["state"] in FINAL_STATES:
            raise ApiError(400, f"job {resource} is already in state {job['state']}", "FAILED_PRECONDITION")
        job["state"] = "JOB_STATE_CANCELLING"
        if self.runner is not None:
            self.runner.kill(resource)
        return {}

    def _job_started(self, key: str) -> None:
        with self.lock:
            stamp = now()
            self.jobs[key].update(state="JOB_STATE_RUNNING", startTime=stamp, updateTime=stamp)

    def _job_exited(self, key: str, end: JobExit) -> None:
        """Record how the job's process ended, then tell `on_job_end` (outside the lock: it may call back)."""
        with self.lock:
            job = self.jobs[key]
            stamp = now()
            job.update(endTime=stamp, updateTime=stamp)
            if end.killed:
                job.update(state="JOB_STATE_CANCELLED", error={"code": _CANCELLED_CODE, "message": "CANCELED"})
            elif end.code == 0:
                job["state"] = "JOB_STATE_SUCCEEDED"
            else:
                job.update(state="JOB_STATE_FAILED", error={"code": _FAILED_CODE, "message": _failure(end)})
            final = dict(job)
        if self.on_job_end is not None:
            self.on_job_end(final)


def _failure(end: JobExit) -> str:
    if end.code is None:
        return f"The replica workerpool0-0 could not start: {end.stderr_tail}"
    return (
        f"The replica workerpool0-0 exited with a non-zero status of {end.code}. Termination reason: Error. "
        f"Last lines of its stderr:\n{end.stderr_tail}"
    )
