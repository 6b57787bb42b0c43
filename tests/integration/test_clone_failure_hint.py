"""A run whose clone fails says what to set (issue 17: a run without source.clone_url failed with git's words only)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from relaunch.adapters.local.builder import BuildError, GitCheckoutBuilder
from relaunch.domain.model import PipelineRun, Trigger


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    "url",
    [f"https://127.0.0.1:{closed_port()}/acme/nightly.git", "file:///nonexistent/acme/nightly"],
    ids=["unreachable-host", "missing-path"],
)
def test_a_failed_clone_of_a_schedule_run_names_source_clone_url(tmp_path: Path, url: str) -> None:
    """A schedule run (a ref, no commit) of a repository this machine cannot clone: the reason says what to set."""
    trigger = Trigger(kind="schedule", delivery_key="k", repo="acme/nightly", ref="refs/heads/main", clone_url=url)
    run = PipelineRun(id="nightly-1", pipeline="nightly", trigger=trigger)
    with pytest.raises(BuildError) as failed:
        GitCheckoutBuilder(tmp_path / "ws").build(run, key="k")
    said = str(failed.value)
    assert said.startswith(f"git clone of {url} failed: ") and "\n" not in said, said
    assert "set the pipeline spec's source.clone_url" in said and "file:///PATH" in said, said
    assert not list((tmp_path / "ws").iterdir())  # no half-made checkout left behind
