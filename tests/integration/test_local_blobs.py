"""LocalBlobStore.copy_tree: the embedded stack's copy of a run's model into the registry prefix of its artifacts."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from relaunch.adapters.local.blobs import LocalBlobStore
from relaunch.adapters.local.registry import LocalRegistry


def trained(tmp_path: Path) -> Path:
    model = tmp_path / "artifacts" / "runs" / "digits-1" / "model"
    (model / "assets").mkdir(parents=True)
    (model / "model.joblib").write_text("weights")
    (model / "assets" / "vocab.txt").write_text("a b c")
    return model


def test_copy_tree_copies_the_folder_and_a_second_call_copies_nothing(tmp_path: Path) -> None:
    src = trained(tmp_path)
    dest = tmp_path / "artifacts" / "registry" / "digits" / "digits-1" / "model"
    blobs = LocalBlobStore()

    assert blobs.copy_tree(str(src), str(dest)) == str(dest)
    assert (dest / "model.joblib").read_text() == "weights" and (dest / "assets" / "vocab.txt").read_text() == "a b c"
    (src / "model.joblib").write_text("a later job's weights")
    assert blobs.copy_tree(str(src), str(dest)) == str(dest)
    assert (dest / "model.joblib").read_text() == "weights"
    assert os.listdir(dest.parent) == ["model"]  # no half copy or staging folder left beside it


def test_a_copy_that_fails_half_way_leaves_nothing_at_dest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = trained(tmp_path)
    dest = tmp_path / "registry" / "digits" / "digits-1" / "model"
    copied: list[str] = []

    def copy_then_fail(a: str, b: str) -> str:  # a full disk after the first file
        if copied:
            raise OSError(28, "No space left on device")
        copied.append(a)
        return str(shutil.copy2(a, b))

    with monkeypatch.context() as m:
        m.setattr("relaunch.adapters.local.blobs._copy_file", copy_then_fail)
        with pytest.raises(OSError, match="No space"):
            LocalBlobStore().copy_tree(str(src), str(dest))
    assert copied and not dest.exists() and os.listdir(dest.parent) == []
    LocalBlobStore().copy_tree(str(src), str(dest))
    assert (dest / "assets" / "vocab.txt").read_text() == "a b c"


def test_special_files_are_refused(tmp_path: Path) -> None:
    src = trained(tmp_path)
    os.mkfifo(src / "assets" / "pipe")  # a job's way to make the copy block forever
    with pytest.raises(ValueError, match="not a regular file"):
        LocalBlobStore().copy_tree(str(src), str(tmp_path / "registry" / "m"))


@pytest.mark.parametrize("where", ["model.joblib", "assets"])
def test_a_symbolic_link_in_the_model_folder_is_refused(tmp_path: Path, where: str) -> None:
    src = trained(tmp_path)
    secret = tmp_path / "secrets" / "github_token"
    secret.parent.mkdir()
    secret.write_text("ghp_x")
    target = src / where
    if target.is_dir():
        (target / "vocab.txt").unlink()
        target.rmdir()
    else:
        target.unlink()
    target.symlink_to(secret)
    dest = tmp_path / "registry" / "m"
    with pytest.raises(ValueError, match="symbolic link"):
        LocalBlobStore().copy_tree(str(src), str(dest))
    assert not dest.exists()


def test_a_missing_model_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        LocalBlobStore().copy_tree(str(tmp_path / "runs" / "r" / "model"), str(tmp_path / "registry" / "m"))


def test_the_local_registry_still_keeps_its_own_copy_of_a_registry_copy(tmp_path: Path) -> None:
    src = trained(tmp_path)
    dest = tmp_path / "artifacts" / "registry" / "digits" / "digits-1" / "model"
    uri = LocalBlobStore().copy_tree(str(src), str(dest))
    registry = LocalRegistry(tmp_path / "registry-root")

    version = registry.register("digits", "digits-1", uri, {"accuracy": 0.97})
    assert Path(version.artifact_uri).parent.parent == (tmp_path / "registry-root").resolve()
    assert (Path(version.artifact_uri) / "model.joblib").read_text() == "weights"


@pytest.mark.parametrize("planted", ["folder", "link"])
def test_a_champion_planted_where_the_evaluation_is_staged_is_replaced_by_the_real_one(
    tmp_path: Path, planted: str
) -> None:
    champion = trained(tmp_path)
    dest = tmp_path / "artifacts" / "runs" / "digits-2" / "inputs" / "champion-v1"
    dest.parent.mkdir(parents=True)
    if planted == "folder":  # written by the run's own training job before the evaluation is staged
        dest.mkdir()
        (dest / "model.joblib").write_text("a champion that always loses")
    else:
        (tmp_path / "elsewhere").mkdir()
        dest.symlink_to(tmp_path / "elsewhere")

    assert LocalBlobStore().stage_read_only(str(champion), str(dest)) == str(dest)
    assert not dest.is_symlink() and (dest / "model.joblib").read_text() == "weights"
    assert not os.access(dest / "model.joblib", os.W_OK) or os.geteuid() == 0  # read-only for anyone but root
    assert not (os.stat(dest / "model.joblib").st_mode & 0o222)
    assert os.listdir(dest.parent) == ["champion-v1"]  # the planted copy left with the staging folder
