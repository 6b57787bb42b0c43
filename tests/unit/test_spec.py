"""Pipeline spec loading: valid specs load, a typo names the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from relaunch.config_files import load_spec, load_specs
from relaunch.domain.spec import SpecError

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = """
name: demo
source: {repo: acme/models}
train: {command: [python, train.py]}
evaluate: {command: [python, evaluate.py]}
endpoint: demo
"""


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_shipped_specs_load() -> None:
    specs = load_specs(ROOT / "pipelines")
    assert specs["digits"].source.repo == "relaunch-demo/digits"
    assert specs["digits"].gate.floors["accuracy"] == 0.90


def test_defaults_of_a_minimal_spec(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, MINIMAL))
    assert spec.source.branches == ["main"] and spec.source.paths == ["**"]
    assert spec.rollout.strategy == "direct" and spec.train.max_retries == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ("trian: {command: [x]}", "trian"),
        ("source: {repo: not-a-repo}", "source.repo"),
        ("train: {command: []}", "train.command"),
        ("rollout: {strategy: yolo}", "rollout"),
        ("gate: {significance: 2}", "gate.significance"),
        ("name: Bad_Name", "name"),
        ("train: {command: [python], machine: {gpu: 1}}", "train.machine.gpu"),
    ],
)
def test_a_wrong_field_names_the_file_and_the_field(tmp_path: Path, change: str, field: str) -> None:
    key = change.split(":")[0]
    text = "\n".join(line for line in MINIMAL.splitlines() if not line.startswith(key + ":")) + "\n" + change
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(path) in str(err.value) and field in str(err.value)


def test_yaml_syntax_errors_and_non_mappings_name_the_file(tmp_path: Path) -> None:
    for text in ("name: [unclosed", "- a list"):
        path = write(tmp_path, text)
        with pytest.raises(SpecError, match=str(path)):
            load_spec(path)


def test_duplicate_pipeline_names_are_refused(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL, "a.yaml")
    write(tmp_path, MINIMAL, "b.yml")
    with pytest.raises(SpecError, match="defined twice"):
        load_specs(tmp_path)


def test_branch_and_path_patterns(tmp_path: Path) -> None:
    spec = load_spec(
        write(
            tmp_path,
            MINIMAL.replace(
                "{repo: acme/models}", "{repo: Acme/Models, branches: [main, 'release/*'], paths: ['src/**', '*.json']}"
            ),
        )
    )
    src = spec.source
    assert src.watches_repo("acme/models") and not src.watches_repo("acme/other")
    assert src.watches_branch("release/1.2") and not src.watches_branch("feature/x")
    assert src.watches_path("src/a/b.py") and src.watches_path("params.json") and not src.watches_path("README.md")


def test_tags_wandb_and_drift_have_safe_defaults_and_are_validated(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, MINIMAL))
    assert spec.source.tags == [] and spec.source.wandb is None
    assert (spec.drift.enabled, spec.drift.min_severity, spec.drift.cooldown_s) == (True, "warning", 21600)
    wandb = MINIMAL.replace("{repo: acme/models}", "{repo: acme/models, wandb: {entity: e, project: p, collection: c}}")
    source = load_spec(write(tmp_path, wandb)).source
    assert source.wandb is not None and source.wandb.aliases == ["candidate"] and len(source.wandb.events) == 3
    for change, field in [
        ("drift: {min_severity: loud}", "drift.min_severity"),
        ("drift: {cooldown_s: -1}", "drift.cooldown_s"),
        ("source: {repo: a/b, wandb: {entity: e, project: p}}", "source.wandb.collection"),
        (
            "source: {repo: a/b, wandb: {entity: e, project: p, collection: c, events: [deleted]}}",
            "source.wandb.events",
        ),
    ]:
        key = change.split(":")[0]
        text = "\n".join(line for line in MINIMAL.splitlines() if not line.startswith(key + ":")) + "\n" + change
        with pytest.raises(SpecError, match=field.replace(".", r"\.")):
            load_spec(write(tmp_path, text))


def test_the_head_branch_is_the_first_literal_one(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, MINIMAL.replace("{repo: acme/models}", "{repo: a/b, branches: ['rel/*', dev]}")))
    assert spec.source.head_branch() == "dev" and spec.source.repo_clone_url() == "https://github.com/a/b.git"
