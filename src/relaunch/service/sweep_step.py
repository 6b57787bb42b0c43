"""A run's training as a sweep: started on the sweep backend, its trials put on the timeline, the winner's model
handed to the evaluation as if one training had made it.

To the rest of the orchestrator a sweep is one training job whose id is the sweep's (`run.jobs["train"]`):
`JobsAndSweeps` routes that id's status and cancel to the sweep backend, so superseding a run cancels every trial,
the reconcile tick polls a sweep (and finds its lost trials) as it polls any job, and a run's training seconds, and so
its cost, are its trials' sum. The best trial is chosen on the validation split only; the evaluation then scores its
model against the champion on the held-out split, which no trial saw.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from relaunch.domain import effects
from relaunch.domain.jobs import RunPaths, train_request
from relaunch.domain.model import JobRequest, JobStatus, PipelineRun, TimelineEntry
from relaunch.domain.ports import BlobStore, StepStore, TrainingBackend
from relaunch.domain.spec import PipelineSpec
from relaunch.domain.sweep import SweepBackend, SweepRequest, SweepStatus, as_job, best_trial, trial_entry

NO_SWEEPS = "sweep-unsupported"  # the id a sweep gets on a training backend that runs none: it fails at once


class JobsAndSweeps:
    """A TrainingBackend for the orchestrator: jobs go to `jobs`, a sweep's id to `sweeps`."""

    def __init__(self, jobs: TrainingBackend, sweeps: SweepBackend) -> None:
        self.jobs = jobs
        self.sweeps = sweeps

    def submit(self, request: JobRequest) -> str:
        return self.jobs.submit(request)

    def status(self, job_id: str) -> JobStatus:
        return as_job(self.sweeps.status(job_id)) if self.sweeps.owns(job_id) else self.jobs.status(job_id)

    def cancel(self, job_id: str) -> None:
        (self.sweeps if self.sweeps.owns(job_id) else self.jobs).cancel(job_id)


class SweepStep:
    """Starts and follows the sweep of a run whose spec has one; any other run's training is one job, as before."""

    def __init__(
        self, store: StepStore, backend: TrainingBackend, blobs: BlobStore, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.backend = backend
        self.sweeps = backend.sweeps if isinstance(backend, JobsAndSweeps) else None
        self.blobs = blobs
        self.clock = clock

    def submit(self, run: PipelineRun, spec: PipelineSpec, paths: RunPaths) -> str:
        """Submit the run's training: its sweep if the spec has one, else the one job."""
        request = train_request(run, spec, run.image or "", paths)
        if spec.sweep is None:
            return self.backend.submit(request)
        if self.sweeps is None:
            return NO_SWEEPS
        return self.sweeps.start(SweepRequest(key=effects.job(run.id, "sweep"), trial=request, sweep=spec.sweep))

    def status(self, run: PipelineRun, spec: PipelineSpec, paths: RunPaths) -> tuple[JobStatus, PipelineRun]:
        """The training's status and the run as stored; a sweep's trials that ended are put on the timeline, and
        once it succeeded the winner's model is copied to where the evaluation reads the candidate."""
        job_id = run.jobs["train"]
        if job_id == NO_SWEEPS:
            why = "this stack's training backend runs no sweeps (the local agent does): remove `sweep:` to train once"
            return JobStatus(id=job_id, state="failed", message=why), run
        if self.sweeps is None or not self.sweeps.owns(job_id):
            return self.backend.status(job_id), run
        sweep = self.sweeps.status(job_id)
        run = self._record(run, spec, sweep)
        best = best_trial(sweep.spec, sweep.trials)
        if sweep.state == "succeeded" and best is not None:
            self.blobs.copy_tree(f"{best.output_dir.rstrip('/')}/model", paths.model)  # copied once
        return as_job(sweep), run

    def label(self, run: PipelineRun, candidate: str) -> str:
        """The gate report's name of the candidate: for a sweep, which trial won on validation out of how many."""
        sweep = self._sweep_of(run)
        best = best_trial(sweep.spec, sweep.trials) if sweep else None
        if sweep is None or best is None:
            return candidate
        metric = sweep.spec.objective.metric
        return (
            f"{candidate}, trial {best.number} of {len(sweep.trials)} trials "
            f"(best {metric} on the validation split: {best.objective:.4f})"
        )

    def _sweep_of(self, run: PipelineRun) -> SweepStatus | None:
        job_id = run.jobs.get("train", "")
        if self.sweeps is None or not self.sweeps.owns(job_id):
            return None
        return self.sweeps.status(job_id)

    def _record(self, run: PipelineRun, spec: PipelineSpec, sweep: SweepStatus) -> PipelineRun:
        """Each ended trial once on the run's timeline, with its parameters, objective and cost; the run as stored.

        The entries go in with a save of the run (its version checked), not as appends: of two handlers that read
        the timeline at the same moment, the one holding a stale run gets ConflictError and writes nothing, and its
        retry reads the timeline again (a kill -9 once left two handlers appending the same trials).
        """
        timeline = self.store.timeline(run.id)
        shown = {e.data.get("trial") for e in timeline if e.kind == "trial"}
        metric, machine = sweep.spec.objective.metric, spec.train.machine
        entries = [
            trial_entry(trial, metric, machine, now=self.clock())
            for trial in sweep.trials
            if trial.state != "running" and trial.number not in shown
        ]
        if sweep.state != "running" and not any(e.data.get("sweep") == sweep.id for e in timeline):
            entries.append(sweep_note(sweep, now=self.clock()))
        return self.store.save_run(run, entries) if entries else run


def sweep_note(sweep: SweepStatus, *, now: float) -> TimelineEntry:
    """What the timeline says when a sweep ends."""
    return TimelineEntry(at=now, kind="info", message=f"sweep {sweep.state}: {sweep.message}", data={"sweep": sweep.id})
