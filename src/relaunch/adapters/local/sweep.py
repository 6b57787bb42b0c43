"""Local sweeps: an Optuna study per sweep, its trials run as local agent jobs (a `SweepBackend`).

Each poll (a trial's job finishing, the reconcile tick) moves the sweep on under a file lock: it records what the
running trials' jobs did, stops a trial the pruner gives up on, retries a trial whose job failed for infrastructure
reasons, and asks the study for new trials up to `parallel_trials`. The study lives in the stack's home
(`sweeps/<id>/`), never under a run's artifacts, where a job could rewrite it. A trial's job key is derived from its
number (and attempt), and the agent runs a key once, so a stack killed anywhere resumes the sweep without losing a
finished trial or running one twice: a trial the study has as running is looked up again by that key.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState as OptunaState

from relaunch.adapters.local.sweep_ids import PREFIX
from relaunch.adapters.local.sweep_study import distributions, open_study, read_report
from relaunch.domain.failures import classify
from relaunch.domain.model import JobRequest, JobStatus
from relaunch.domain.ports import TrainingBackend
from relaunch.domain.sweep import (
    METRICS_VARIABLE,
    NUMBER_VARIABLE,
    PARAMS_VARIABLE,
    SweepRequest,
    SweepStatus,
    Trial,
    TrialState,
    outcome,
    to_start,
)

METRICS_FILE = "trial_metrics.jsonl"
_STATE: dict[OptunaState, TrialState] = {
    OptunaState.RUNNING: "running",
    OptunaState.WAITING: "running",
    OptunaState.COMPLETE: "succeeded",
    OptunaState.PRUNED: "pruned",
    OptunaState.FAIL: "failed",
}


class LocalSweeps:
    """Sweeps whose trials are jobs of `jobs` (the local agent), each sweep's study in `state_dir/<id>/`."""

    def __init__(self, jobs: TrainingBackend, state_dir: Path) -> None:
        self.jobs = jobs
        self.state_dir = Path(state_dir)

    def owns(self, job_id: str) -> bool:
        return job_id.startswith(PREFIX)

    def start(self, request: SweepRequest) -> str:
        """Create the sweep (once per key) and start its first trials."""
        sweep_id = PREFIX + hashlib.sha256(request.key.encode()).hexdigest()[:16]
        folder = self.state_dir / sweep_id
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        saved = folder / "request.json"
        if not saved.exists():  # written whole, then renamed: a crash leaves none or all of it
            partial = folder / "request.json.partial"
            partial.write_text(request.model_dump_json())
            partial.replace(saved)
        self.status(sweep_id)
        return sweep_id

    def status(self, sweep_id: str) -> SweepStatus:
        request = self._request(sweep_id)
        with self._locked(sweep_id) as folder:
            study = open_study(folder, request.sweep, sweep_id)
            if not (folder / "cancelled").exists():
                self._advance(study, request)
            trials = self._trials(study, request)
        if (folder / "cancelled").exists():
            return SweepStatus(
                id=sweep_id, state="cancelled", spec=request.sweep, trials=trials, message="the sweep was cancelled"
            )
        state, message = outcome(request.sweep, trials)
        failed = [t.job_id for t in trials if t.state == "failed" and t.job_id]
        tail = self.jobs.status(failed[-1]).log_tail if state == "failed" and failed else ""
        return SweepStatus(id=sweep_id, state=state, spec=request.sweep, trials=trials, message=message, log_tail=tail)

    def cancel(self, sweep_id: str) -> None:
        request = self._request(sweep_id)
        with self._locked(sweep_id) as folder:
            (folder / "cancelled").touch()
            study = open_study(folder, request.sweep, sweep_id)
            for frozen in study.get_trials(deepcopy=False, states=(OptunaState.RUNNING,)):
                job_id = self.jobs.submit(self._job(request, frozen))
                self.jobs.cancel(job_id)
                self._end(study, frozen, OptunaState.FAIL, self.jobs.status(job_id), "cancelled", ended="cancelled")

    # -- moving a sweep on ------------------------------------------------------------------------------------

    def _advance(self, study: optuna.Study, request: SweepRequest) -> None:
        for frozen in study.get_trials(deepcopy=False, states=(OptunaState.RUNNING,)):
            self._follow(study, request, frozen)
        for _ in range(to_start(request.sweep, self._trials(study, request))):
            trial = study.ask(distributions(request.sweep))
            self.jobs.submit(self._job(request, study.get_trials(deepcopy=False)[trial.number]))

    def _follow(self, study: optuna.Study, request: SweepRequest, frozen: FrozenTrial) -> None:
        """Record what a running trial's job did: its report so far, its end, a retry, or its pruning."""
        if set(frozen.params) != set(request.sweep.parameters):  # killed while the study chose them: never submitted
            _live(study, frozen).set_user_attr("ended", "abandoned")
            study.tell(frozen.number, state=OptunaState.FAIL)
            return
        job_id = self.jobs.submit(self._job(request, frozen))  # the key's job: submitted now if it never was
        status = self.jobs.status(job_id)
        try:
            reported = read_report(self._metrics(request, frozen.number), request.sweep.objective.metric)
        except ValueError as exc:
            self.jobs.cancel(job_id)
            self._end(study, frozen, OptunaState.FAIL, status, f"its report is unusable: {exc}")
            return
        live = _live(study, frozen)
        for step in sorted(set(reported) - set(frozen.intermediate_values)):
            live.report(reported[step], step)
        if not status.done:
            if reported and live.should_prune():
                self.jobs.cancel(job_id)
                self._end(study, frozen, OptunaState.PRUNED, self.jobs.status(job_id), "stopped early")
            return
        self._ended(study, request, frozen, status, reported)

    def _ended(
        self, study: optuna.Study, request: SweepRequest, frozen: FrozenTrial, status: JobStatus, got: dict[int, float]
    ) -> None:
        metric = request.sweep.objective.metric
        if status.state == "succeeded":
            if not got:
                self._end(study, frozen, OptunaState.FAIL, status, f"the trial reported no {metric}")
            else:
                self._end(study, frozen, OptunaState.COMPLETE, status, "", value=got[max(got)])
            return
        attempt = int(frozen.user_attrs.get("attempt", 1))
        if status.state == "failed" and classify(status).retryable and attempt <= request.trial.max_retries:
            _live(study, frozen).set_user_attr("attempt", attempt + 1)
            self.jobs.submit(self._job(request, frozen, attempt + 1))
            return
        ended = "cancelled" if status.state == "cancelled" else "failed"
        self._end(study, frozen, OptunaState.FAIL, status, status.message or status.state, ended=ended)

    def _end(
        self,
        study: optuna.Study,
        frozen: FrozenTrial,
        state: OptunaState,
        status: JobStatus,
        message: str,
        *,
        value: float | None = None,
        ended: str = "",
    ) -> None:
        attrs: dict[str, object] = {"message": message, "ended": ended, "job_id": status.id}
        attrs |= {"started_at": status.started_at, "finished_at": status.finished_at}
        live = _live(study, frozen)
        for key, item in attrs.items():
            live.set_user_attr(key, item)
        study.tell(frozen.number, value, state=state)

    # -- reading -----------------------------------------------------------------------------------------------

    def _trials(self, study: optuna.Study, request: SweepRequest) -> list[Trial]:
        """The sweep's trials, less any the study began while the stack was killed and that never ran."""
        frozen = study.get_trials(deepcopy=False)
        return [self._trial(t, request) for t in frozen if t.user_attrs.get("ended") != "abandoned"]

    def _trial(self, frozen: FrozenTrial, request: SweepRequest) -> Trial:
        attrs = frozen.user_attrs
        state = _STATE.get(frozen.state, "failed")
        if state == "failed" and attrs.get("ended") == "cancelled":
            state = "cancelled"
        started, finished, job_id = attrs.get("started_at"), attrs.get("finished_at"), attrs.get("job_id")
        if state == "running" and set(frozen.params) == set(request.sweep.parameters):
            status = self.jobs.status(self.jobs.submit(self._job(request, frozen)))
            started, finished, job_id = status.started_at, None, status.id
        return Trial(
            number=frozen.number,
            params=dict(frozen.params),
            state=state,
            objective=frozen.value if state == "succeeded" else None,
            output_dir=self._output(request, frozen.number),
            job_id=job_id,
            attempts=int(attrs.get("attempt", 1)),
            started_at=started,
            finished_at=finished,
            message=str(attrs.get("message", "")),
        )

    def _job(self, request: SweepRequest, frozen: FrozenTrial, attempt: int | None = None) -> JobRequest:
        """The trial's job: the training job with its parameters, its own output folder and its own key."""
        attempt = attempt or int(frozen.user_attrs.get("attempt", 1))
        template, n = request.trial, frozen.number
        env = {
            **template.env,
            PARAMS_VARIABLE: json.dumps(frozen.params, sort_keys=True),
            METRICS_VARIABLE: str(self._metrics(request, n)),
            NUMBER_VARIABLE: str(n),
        }
        key = f"{template.key}:trial:{n}" + (f":{attempt}" if attempt > 1 else "")
        return template.model_copy(update={"key": key, "env": env, "output_dir": self._output(request, n)})

    def _output(self, request: SweepRequest, number: int) -> str:
        return f"{(request.trial.output_dir or '').rstrip('/')}/trials/{number}"

    def _metrics(self, request: SweepRequest, number: int) -> Path:
        return Path(self._output(request, number)) / METRICS_FILE

    def _request(self, sweep_id: str) -> SweepRequest:
        if not self.owns(sweep_id) or "/" in sweep_id or sweep_id in (PREFIX,):
            raise KeyError(sweep_id)
        path = self.state_dir / sweep_id / "request.json"
        if not path.is_file():
            raise KeyError(sweep_id)
        return SweepRequest.model_validate_json(path.read_text())

    @contextmanager
    def _locked(self, sweep_id: str) -> Iterator[Path]:
        """The sweep's folder, held alone: two pollers at once would each start the trials one was due."""
        folder = self.state_dir / sweep_id
        with (folder / "lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield folder
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _live(study: optuna.Study, frozen: FrozenTrial) -> optuna.Trial:
    """The study's handle on a trial, to report to and annotate it (Optuna keys trials by an id it does not expose)."""
    return optuna.trial.Trial(study, frozen._trial_id)
