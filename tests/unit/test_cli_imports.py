"""The reading commands load only what reading needs (issue 20: `relaunch runs` <= 0.5 s at 100,000 runs).

Most of a `relaunch runs` was the CLI's own imports: every subcommand's module was imported to register its parser,
and with it requests, YAML and rich. Each case runs the CLI in a fresh interpreter, as a user's shell does, and
lists the modules it loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from relaunch.bootstrap import App
from relaunch.domain.model import Delivery, PipelineRun, Trigger
from relaunch.settings import Settings

# What only another command needs: the HTTP client of `simulate`, the YAML of `launch-queue`, the service's ingest,
# the cloud adapters and every SDK (google.* beyond the namespace packages site's .pth files create), the specs.
HEAVY = (
    "requests",
    "urllib3",
    "yaml",
    "relaunch.service.ingest",
    "relaunch.service.orchestrator",
    "relaunch.adapters.gcp",
    "relaunch.simulate",
    "google.",
    "wandb",
    "github",
    "vertexai",
    "relaunch.domain.spec",  # the pipeline specs' models: a listing reads runs, never specs
)
# rich renders the tables: a command that prints none (JSON, or nothing recorded yet) does not load it.
NO_TABLE = (*HEAVY, "rich")
CHILD = """
import json, sys
from relaunch.cli import main
code = main(sys.argv[1:])
sys.stdout.flush()
print("\\n" + json.dumps([code, sorted(sys.modules)]))
"""


def loaded(home: Path, *argv: str) -> set[str]:
    """The modules a fresh `relaunch ARGV` loaded against `home` (it must succeed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAUNCH_")} | {"RELAUNCH_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *argv], capture_output=True, text=True, env=env, check=True, timeout=60
    )
    code, modules = json.loads(done.stdout.splitlines()[-1])
    assert code == 0, done.stderr
    return set(modules)


def heavy(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """The loaded modules among `names` and their submodules ("google." is every module under google but the
    namespace package google.cloud, which a site .pth file may load into every interpreter)."""
    return sorted(m for m in modules if any(_under(m, name) for name in names))


def _under(module: str, name: str) -> bool:
    if name.endswith("."):
        return module.startswith(name) and module != "google.cloud"
    return module == name or module.startswith(name + ".")


@pytest.fixture
def one_run(tmp_path: Path) -> Path:
    """A home whose store holds one received run, digits-1."""
    trigger = Trigger(kind="push", delivery_key="github:d", repo="acme/digits", sha="a" * 40)
    run = PipelineRun(id="digits-1", pipeline="digits", trigger=trigger, created_at=1000.0, updated_at=1000.0)
    App(Settings(home=tmp_path)).store.record_delivery(Delivery(key="github:d", source="github", body="{}"), [run])
    return tmp_path


@pytest.mark.parametrize("argv", [["runs"], ["runs", "--json"], ["inbox"]])
def test_nothing_recorded_yet_loads_no_table_and_no_other_command(tmp_path: Path, argv: list[str]) -> None:
    modules = loaded(tmp_path / "nowhere", *argv)
    assert "relaunch.cli.views" in modules  # the command really ran
    assert heavy(modules, NO_TABLE) == []


@pytest.mark.parametrize(
    ("argv", "forbidden"),
    [
        (["runs"], HEAVY),
        (["runs", "--pipeline", "digits"], HEAVY),
        (["runs", "show", "digits-1"], HEAVY),
        (["inbox"], HEAVY),
        (["runs", "--json"], NO_TABLE),
        (["runs", "show", "digits-1", "--json"], NO_TABLE),
    ],
)
def test_reading_runs_loads_no_other_commands_modules(
    one_run: Path, argv: list[str], forbidden: tuple[str, ...]
) -> None:
    modules = loaded(one_run, *argv)
    assert "relaunch.cli.views" in modules
    assert heavy(modules, forbidden) == []
