"""W&B boundary tests: the real wandb SDK (and its wandb-core service) against relaunch.emulated.wandb.

The SDK keeps every file it writes in a temporary folder, never reports errors anywhere, and its service process
is stopped (and checked gone) when each test module ends.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.wandb_server import FakeWandb, serve

pytest.importorskip("wandb", reason="the wandb SDK is not installed (pip install -e '.[wandb]')")

API_KEY = "k" * 40


def _children_named(name: str) -> list[int]:
    """Pids of this process's children whose command line mentions `name`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid() and name in cmdline:
            found.append(int(proc.name))
    return found


@pytest.fixture(scope="module", autouse=True)
def wandb_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point every wandb folder at a temporary directory and stop the wandb-core service afterwards."""
    home = tmp_path_factory.mktemp("wandb")
    with pytest.MonkeyPatch.context() as env:
        for name in ("WANDB_API_KEY", "WANDB_BASE_URL", "WANDB_ENTITY", "WANDB_PROJECT", "WANDB_MODE"):
            env.delenv(name, raising=False)
        for name in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
            env.setenv(name, str(home / name.lower()))
        env.setenv("WANDB_SILENT", "true")
        env.setenv("WANDB_ERROR_REPORTING", "false")  # no crash reports leave the machine
        env.setenv("WANDB_DISABLE_GIT", "true")
        env.setenv("NETRC", str(home / "netrc"))  # never read the user's credentials
        yield home
        import wandb

        wandb.teardown()
    deadline = time.monotonic() + 5
    while _children_named("wandb-core") and time.monotonic() < deadline:
        time.sleep(0.05)  # teardown asks the service to exit; give it a moment to go
    assert _children_named("wandb-core") == [], "wandb-core outlived the tests"


@pytest.fixture
def fake() -> Iterator[FakeWandb]:
    """A W&B API on loopback that requires API_KEY."""
    with serve(api_key=API_KEY) as server:
        server.queues.add(("team", "vertex-gpu"))
        yield server
