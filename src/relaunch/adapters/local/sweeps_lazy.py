"""The local sweeps as the orchestrator holds them: Optuna (about 0.8 s of imports) is loaded by the first sweep, not
by every orchestrator process that only ever runs single trainings."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from relaunch.adapters.local.sweep_ids import PREFIX
from relaunch.domain.ports import TrainingBackend
from relaunch.domain.sweep import SweepRequest, SweepStatus

if TYPE_CHECKING:
    from relaunch.adapters.local.sweep import LocalSweeps


class LazySweeps:
    """A SweepBackend that builds LocalSweeps on its first sweep; `owns` needs nothing of it."""

    def __init__(self, jobs: TrainingBackend, state_dir: Path) -> None:
        self.jobs, self.state_dir = jobs, Path(state_dir)
        self._built: LocalSweeps | None = None

    def _sweeps(self) -> LocalSweeps:
        if self._built is None:
            from relaunch.adapters.local.sweep import LocalSweeps

            self._built = LocalSweeps(self.jobs, self.state_dir)
        return self._built

    def owns(self, job_id: str) -> bool:
        return job_id.startswith(PREFIX)

    def start(self, request: SweepRequest) -> str:
        return self._sweeps().start(request)

    def status(self, sweep_id: str) -> SweepStatus:
        return self._sweeps().status(sweep_id)

    def cancel(self, sweep_id: str) -> None:
        self._sweeps().cancel(sweep_id)
