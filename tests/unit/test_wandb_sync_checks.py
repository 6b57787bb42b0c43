"""What relaunch refuses to upload from a job's offline W&B runs (a job runs code a push brought), and how the
upload carries relaunch's W&B key: in the subprocess's environment only, never on its command line or in an error."""

from __future__ import annotations

import struct
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from relaunch.adapters.wandb import sync as sync_module
from relaunch.adapters.wandb.offline_runs import HEADER, OfflineRun
from relaunch.adapters.wandb.sync import WandbSync, check_run
from relaunch.domain.ports import TransientError

pytest.importorskip("wandb")
KEY = "s3cr3t" * 7


def _offline_run(root: Path, *, local_path: str = "", ref: str = "", project: str = "digits") -> OfflineRun:
    """A run folder whose run file holds one artifact record with one manifest entry."""
    from wandb.proto import wandb_internal_pb2 as pb

    folder = root / "wandb" / "offline-run-1-abc"
    folder.mkdir(parents=True)
    record = pb.Record()  # type: ignore[attr-defined]
    entry = record.artifact.manifest.contents.add()
    entry.path, entry.local_path, entry.ref = "model.joblib", local_path, ref
    data = record.SerializeToString()
    (folder / "run-abc.wandb").write_bytes(HEADER + struct.pack("<IHB", 0, len(data), 1) + data)
    return OfflineRun(folder, "abc", "relaunch-demo", project, "train", "digits-1")


def test_artifact_files_from_the_run_folder_pass(tmp_path: Path) -> None:
    staged = tmp_path / "wandb" / ".data" / "staging" / "f1"
    run = _offline_run(tmp_path, local_path=str(staged))
    check_run(run, tmp_path, "relaunch-demo", "digits")


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"local_path": "/etc/passwd"}, "artifact file 'model.joblib' is not in the run's folder"),
        ({"local_path": "{root}/wandb/../../outside"}, "is not in the run's folder"),
        ({"local_path": "{root}/m", "ref": "file:///etc/passwd"}, "is not in the run's folder"),
        ({"local_path": "{root}/m", "project": "someone-elses"}, "names relaunch-demo/someone-elses, not the pipeline"),
    ],
)
def test_a_run_that_would_upload_something_else_is_refused(tmp_path: Path, fields: dict[str, str], why: str) -> None:
    run = _offline_run(tmp_path, **{k: v.format(root=tmp_path) for k, v in fields.items()})
    with pytest.raises(ValueError, match=why.replace("(", r"\(")):
        check_run(run, tmp_path, "relaunch-demo", "digits")


def test_a_run_id_that_is_no_w_and_b_id_is_refused(tmp_path: Path) -> None:
    run = _offline_run(tmp_path, local_path=str(tmp_path / "m"))
    with pytest.raises(ValueError, match="is not a W&B run id"):
        check_run(replace(run, run_id="../../x"), tmp_path, "relaunch-demo", "digits")


def test_a_link_out_of_the_run_folder_is_refused(tmp_path: Path) -> None:
    run = _offline_run(tmp_path, local_path=str(tmp_path / "m"))
    (run.folder / "files").mkdir()
    (run.folder / "files" / "netrc").symlink_to("/root/.netrc")
    with pytest.raises(ValueError, match="netrc links outside the run's folder"):
        check_run(run, tmp_path, "relaunch-demo", "digits")


def test_the_key_goes_through_the_environment_only_and_never_into_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def run(command: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        seen.update(command=command, env=kw["env"])
        return subprocess.CompletedProcess(command, 0, "", f"wandb: ERROR bad key {KEY}\n")  # exits 0 on refusals

    monkeypatch.setattr(sync_module.subprocess, "run", run)
    monkeypatch.setenv("WANDB_BASE_URL", "https://attacker.example")
    syncer = WandbSync(api_key=KEY, base_url="http://127.0.0.1:9")
    with pytest.raises(TransientError) as raised:
        syncer._upload([tmp_path / "offline-run-1-abc"], "relaunch-demo", "digits")
    assert KEY not in str(raised.value) and "bad key ***" in str(raised.value)
    assert not any(KEY in part for part in seen["command"]) and KEY not in repr(syncer)
    env = seen["env"]
    assert env["WANDB_API_KEY"] == KEY and env["WANDB_BASE_URL"] == "http://127.0.0.1:9"  # not the job's, nor ours
    assert not env["WANDB_CONFIG_DIR"].startswith(str(tmp_path))  # fresh settings: the run's .config is the job's
    assert seen["command"][-5:] == [
        "--project",
        "digits",
        "--entity",
        "relaunch-demo",
        str(tmp_path / "offline-run-1-abc"),
    ]
