"""Reading a triggers file: YAML, the Infra model, then the checks across it and the pipeline specs.

Kept apart from the model (deploy/infra.py) so the cross-checks, which read the model, import no loader: no circle.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from relaunch.deploy.crosscheck import crosscheck
from relaunch.deploy.infra import Infra
from relaunch.domain.spec import PipelineSpec


class InfraError(ValueError):
    """The triggers file is invalid; the message names the file and each bad field."""


def load_infra(path: Path, specs: dict[str, PipelineSpec] | None = None) -> Infra:
    """Load and check a triggers file; `specs` (the pipelines) enables the checks that need them."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InfraError(f"{path}: cannot read YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise InfraError(f"{path}: expected a mapping at the top level")
    try:
        infra = Infra.model_validate(raw)
    except ValidationError as exc:
        raise InfraError(f"{path}: " + "; ".join(_describe(err) for err in exc.errors())) from None
    problems = crosscheck(infra, specs)
    if problems:
        raise InfraError(f"{path}: " + "; ".join(f"{where}: {why}" for where, why in problems))
    return infra


def _describe(err: ErrorDetails) -> str:
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    return f"{where}: {err['msg']}"
