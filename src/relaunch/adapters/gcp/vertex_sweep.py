"""Vertex AI sweeps: a HyperparameterTuningJob per sweep (a `SweepBackend`), its trial template the CustomJob spec
the training backend builds for the run's `train` job.

Vertex runs the search itself: it chooses each trial's parameters and passes them to the container as command-line
arguments (`--C=0.5`), sets AIP_MODEL_DIR=<baseOutputDirectory>/<trial id>/model, and reads the objective the trial
reports through the cloudml-hypertune convention (a JSON line in /tmp/hypertune/output.metrics). A sweep is found
again by a label carrying its key, as CustomJobs are, so starting it twice creates one job. The sweep spec it was
started with travels in the trial template's environment (RELAUNCH_SWEEP_SPEC): Vertex keeps it with the job, so
reading a sweep back needs nothing but its name, and the trial can see the search it is part of.
"""

from __future__ import annotations

import time
from typing import Any

from relaunch.adapters.gcp.vertex_common import call, key_digest, label_value
from relaunch.adapters.gcp.vertex_study import study_spec, sweep_state, trial_of
from relaunch.adapters.gcp.vertex_training import KEY_LABEL, VertexTrainingBackend
from relaunch.domain.ports import TransientError
from relaunch.domain.spec_sweep import SweepSpec
from relaunch.domain.sweep import SweepRequest, SweepStatus

SPEC_VARIABLE = "RELAUNCH_SWEEP_SPEC"
COLLECTION = "/hyperparameterTuningJobs/"


class VertexSweeps:
    """A `SweepBackend` on Vertex AI hyperparameter tuning; sweep ids are the tuning jobs' resource names."""

    def __init__(self, training: VertexTrainingBackend) -> None:
        self.training = training  # its client, parent, and the CustomJob spec every trial runs

    def __repr__(self) -> str:
        return f"VertexSweeps({self.training!r})"

    def owns(self, job_id: str) -> bool:
        return COLLECTION in job_id

    def start(self, request: SweepRequest) -> str:
        """Create the tuning job unless one labelled with this key exists; returns its resource name."""
        existing = self._find(request.key)
        if existing is not None:
            return existing
        if request.trial.not_before is not None and time.time() < request.trial.not_before:
            due = time.strftime("%H:%M:%S", time.localtime(request.trial.not_before))
            raise TransientError(f"sweep {request.key} is a retry not due before {due}")
        created = call(
            self.training.client,
            "create_hyperparameter_tuning_job",
            {"parent": self.training.parent, "hyperparameter_tuning_job": self.tuning_job(request)},
            "create tuning job",
        )
        name: str = created.name
        return name

    def status(self, sweep_id: str) -> SweepStatus:
        """The tuning job and its trials (KeyError if the id is not a tuning job's)."""
        if not self.owns(sweep_id):
            raise KeyError(sweep_id)
        job = call(self.training.client, "get_hyperparameter_tuning_job", {"name": sweep_id}, f"get {sweep_id}")
        spec = spec_of(job)
        base = job.trial_job_spec.base_output_directory.output_uri_prefix
        state = job.state.name
        trials = [trial_of(spec, trial, base, state) for trial in job.trials]
        outcome, message = sweep_state(spec, state, job.error.message, trials)
        tail = job.error.message if outcome == "failed" else ""
        return SweepStatus(
            id=job.name or sweep_id, state=outcome, spec=spec, trials=trials, message=message, log_tail=tail
        )

    def cancel(self, sweep_id: str) -> None:
        """Ask Vertex to cancel the tuning job, which stops its running trials; a finished job is left as it is."""
        if not self.owns(sweep_id):
            raise KeyError(sweep_id)
        try:
            call(self.training.client, "cancel_hyperparameter_tuning_job", {"name": sweep_id}, f"cancel {sweep_id}")
        except ValueError:
            if self.status(sweep_id).state == "running":
                raise

    def tuning_job(self, request: SweepRequest) -> Any:
        """The HyperparameterTuningJob resource of a sweep; ValueError naming what Vertex would refuse."""
        from google.cloud import aiplatform_v1 as v1

        if request.trial.output_dir is None:
            raise ValueError("a sweep's trial needs output_dir: Vertex writes each trial's model under it")
        trial = request.trial.model_copy(
            update={"env": {**request.trial.env, SPEC_VARIABLE: request.sweep.model_dump_json()}}
        )
        template = self.training.job(trial)
        budget = request.sweep.trial_budget()
        return v1.HyperparameterTuningJob(
            display_name=f"relaunch-{trial.run_id}-sweep"[:128],
            study_spec=v1.StudySpec(study_spec(request.sweep)),
            max_trial_count=budget,
            parallel_trial_count=request.sweep.parallel_trials,
            max_failed_trial_count=budget,  # as locally: the sweep fails only when no trial succeeded
            trial_job_spec=template.job_spec,
            labels={
                "relaunch-run-id": label_value(trial.run_id),
                "relaunch-step": "sweep",
                KEY_LABEL: key_digest(request.key),
            },
        )

    def _find(self, key: str) -> str | None:
        digest = key_digest(key)
        request = {"parent": self.training.parent, "filter": f'labels.{KEY_LABEL}="{digest}"', "page_size": 10}
        page = call(self.training.client, "list_hyperparameter_tuning_jobs", request, "list tuning jobs")
        matches = [job for job in page.hyperparameter_tuning_jobs if job.labels.get(KEY_LABEL) == digest]
        if not matches:
            return None
        oldest = min(matches, key=lambda job: (job.create_time.timestamp() if job.create_time else 0.0, job.name))
        name: str = oldest.name
        return name


def vertex_training(backend: object) -> VertexTrainingBackend | None:
    """The backend as the Vertex training backend tuning jobs are built from, or None if it is another."""
    return backend if isinstance(backend, VertexTrainingBackend) else None


def spec_of(job: Any) -> SweepSpec:
    """The sweep spec a tuning job was started with (from its trial template); ValueError if it is absent or bad."""
    pools = job.trial_job_spec.worker_pool_specs
    env = {item.name: item.value for item in pools[0].container_spec.env} if pools else {}
    raw = env.get(SPEC_VARIABLE)
    if raw is None:
        raise ValueError(
            f"tuning job {job.name[:200]} was not started by relaunch: its trials carry no {SPEC_VARIABLE}"
        )
    try:
        return SweepSpec.model_validate_json(raw)
    except ValueError as exc:
        first = str(exc).splitlines()[0][:200]
        raise ValueError(f"tuning job {job.name[:200]}: its {SPEC_VARIABLE} is not a sweep spec ({first})") from None
