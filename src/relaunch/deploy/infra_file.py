"""Reading a triggers file: YAML, the Infra model, then the checks across it and the pipeline specs.

Kept apart from the model (deploy/infra.py) so the cross-checks, which read the model, import no loader: no circle.
"""

from __future__ import annotations

from pathlib import Path

from relaunch.config_files import load_model
from relaunch.deploy.crosscheck import crosscheck
from relaunch.deploy.infra import Infra
from relaunch.domain.spec import PipelineSpec


class InfraError(ValueError):
    """The triggers file is invalid; the message names the file and each bad field."""


def load_infra(path: Path, specs: dict[str, PipelineSpec] | None = None) -> Infra:
    """Load and check a triggers file; `specs` (the pipelines) enables the checks that need them."""
    infra = load_model(path, Infra, InfraError)
    problems = crosscheck(infra, specs)
    if problems:
        raise InfraError(f"{path}: " + "; ".join(f"{where}: {why}" for where, why in problems))
    return infra
