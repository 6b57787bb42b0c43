"""The local stand-in for W&B artifacts: an alias is resolved once, by fetch, and never by set_alias."""

from __future__ import annotations

from pathlib import Path

import pytest

from relaunch.adapters.local.artifacts import LocalArtifacts

COLLECTION = "acme/digits/digits-model"


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifacts:
    artifacts = LocalArtifacts(tmp_path / "wandb")
    for text in ("v0", "v1"):
        folder = tmp_path / f"model-{text}"
        folder.mkdir()
        (folder / "model.joblib").write_text(text)
        artifacts.log(COLLECTION, folder, metadata={"reported_metrics": {"accuracy": 0.9, "note": "x"}})
    artifacts.set_alias(f"{COLLECTION}:v0", "candidate")
    return artifacts


def test_fetch_names_the_concrete_version_an_alias_resolved_to(store: LocalArtifacts, tmp_path: Path) -> None:
    fetched = store.fetch(f"{COLLECTION}:candidate", str(tmp_path / "run" / "model"))
    assert fetched.ref == f"{COLLECTION}:v0" and fetched.reported_metrics == {"accuracy": 0.9}
    assert (tmp_path / "run" / "model" / "model.joblib").read_text() == "v0"


def test_the_promote_alias_lands_on_the_fetched_version_after_the_alias_moved(
    store: LocalArtifacts, tmp_path: Path
) -> None:
    fetched = store.fetch(f"{COLLECTION}:candidate", str(tmp_path / "run" / "model"))
    store.set_alias(f"{COLLECTION}:v1", "candidate")
    store.set_alias(fetched.ref, "production")
    assert store.aliases(fetched.ref) == {"latest": "v1", "candidate": "v1", "production": "v0"}


def test_set_alias_refuses_a_ref_that_names_an_alias(store: LocalArtifacts) -> None:
    with pytest.raises(ValueError, match="concrete version"):
        store.set_alias(f"{COLLECTION}:candidate", "production")
    assert "production" not in store.aliases(f"{COLLECTION}:v0")


def test_an_alias_file_pointing_outside_the_versions_is_refused(store: LocalArtifacts, tmp_path: Path) -> None:
    aliases = tmp_path / "wandb" / "acme" / "digits" / "digits-model" / "aliases.json"
    aliases.write_text('{"candidate": "../../../../elsewhere"}')
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(ValueError, match="does not exist"):
        store.fetch(f"{COLLECTION}:candidate", str(tmp_path / "run" / "model"))
