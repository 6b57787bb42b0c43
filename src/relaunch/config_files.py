"""Configuration files read from disk: pipeline specs (`pipelines/*.yaml`) and the price table (RELAUNCH_PRICE_FILE).

The domain defines and validates what they hold (domain/spec.py, domain/cost.py); reading the files is kept here so
the domain does no I/O.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

if TYPE_CHECKING:  # the spec models load with the first spec read, not with a process that only prices runs
    from relaunch.domain.cost import PriceTable
    from relaunch.domain.spec import PipelineSpec

M = TypeVar("M", bound=BaseModel)


def load_spec(path: Path) -> PipelineSpec:
    """Load one spec file, naming the file and each bad field on error."""
    from relaunch.domain.spec import PipelineSpec, SpecError  # noqa: PLC0415

    return load_model(path, PipelineSpec, SpecError)


def load_model(path: Path, model: type[M], error: type[ValueError]) -> M:
    """A YAML file's top-level mapping as `model`; `error` naming the file and each bad field otherwise."""
    import yaml  # noqa: PLC0415 (a process that reads its specs from the compiled cache never loads the parser)

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise error(f"{path}: cannot read YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise error(f"{path}: expected a mapping at the top level")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise error(f"{path}: " + "; ".join(_describe(err) for err in exc.errors())) from None


def _describe(err: ErrorDetails) -> str:
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    return f"{where}: {err['msg']}"


def spec_files(directory: Path) -> list[Path]:
    """The pipeline spec files of a folder, in the order they are loaded."""
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])


def load_specs(directory: Path) -> dict[str, PipelineSpec]:
    """Load every `*.yaml`/`*.yml` in a folder; pipeline names must be unique."""
    from relaunch.domain.spec import SpecError  # noqa: PLC0415

    specs: dict[str, PipelineSpec] = {}
    for path in spec_files(directory):
        spec = load_spec(path)
        if spec.name in specs:
            raise SpecError(f"{path}: name: pipeline {spec.name!r} is defined twice")
        specs[spec.name] = spec
    return specs


def load_prices(path: Path | None) -> PriceTable:
    """The default table with a YAML/JSON file's `machines`, `accelerators` and `spot_factor` merged over it."""
    from relaunch.domain.cost import DEFAULT_ACCELERATORS, DEFAULT_MACHINES, DEFAULT_PRICES, PriceTable  # noqa: PLC0415

    if path is None:
        return DEFAULT_PRICES
    import yaml  # noqa: PLC0415 (loaded only to read a price file, not by every process that prices)

    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}  # YAML also reads JSON
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read the price file: {exc}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping with machines / accelerators / spot_factor")
    merged = {
        "machines": {**DEFAULT_MACHINES, **(raw.pop("machines", None) or {})},
        "accelerators": {**DEFAULT_ACCELERATORS, **(raw.pop("accelerators", None) or {})},
        **raw,
    }
    try:
        return PriceTable.model_validate(merged)
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"{path}: {where}") from None
