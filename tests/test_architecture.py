"""The project's own promises about structure: import budgets, dependency rules, lint and types."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "relaunch"
SDKS = (
    "google.cloud.aiplatform",
    "google.cloud.pubsub",
    "google.cloud.firestore",
    "google.cloud.devtools",
    "google.cloud.storage",
    "vertexai",
    "wandb",
    "github",
    "sklearn",
    "joblib",
    "numpy",
    "requests",
)


def imports_of(path: Path, *, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def modules_in(folder: str) -> list[Path]:
    return sorted((PKG / folder).rglob("*.py"))


def hits(names: set[str], prefixes: tuple[str, ...]) -> set[str]:
    return {n for n in names if any(n == p or n.startswith(p + ".") for p in prefixes)}


# Webhook functions refuse to start without their secrets (fail closed): give them some.
SECRETS_ENV = {**os.environ, "RELAUNCH_GITHUB_WEBHOOK_SECRET": "s", "RELAUNCH_WANDB_WEBHOOK_TOKEN": "t"}


def test_function_processes_load_no_sdk_and_no_model_library() -> None:
    code = "import sys, json, relaunch.functions.main as m\nfor name in m.ENTRY_POINTS: getattr(m, name)\n"
    code += "print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=SECRETS_ENV)
    loaded = set(json.loads(done.stdout))
    assert "relaunch.functions.drift_alert" in loaded  # every entry point was really loaded
    assert hits(loaded, SDKS) == set()


@pytest.mark.parametrize("folder", ["triggers", "pipelines"])
def test_the_domain_and_the_parsers_import_no_adapter_function_or_sdk(folder: str) -> None:
    for path in modules_in(folder):
        bad = hits(imports_of(path), ("relaunch.adapters", "relaunch.functions", "relaunch.bootstrap", *SDKS))
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_triggers_do_no_io() -> None:
    for path in modules_in("triggers"):
        bad = hits(imports_of(path), ("os", "socket", "subprocess", "sqlite3", "pathlib", "http", "urllib.request"))
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_adapters_never_use_the_service_layer() -> None:
    handlers = ("relaunch.service.orchestrator", "relaunch.service.ingest")
    for path in modules_in("adapters"):
        assert not hits(imports_of(path), handlers), f"{path.relative_to(ROOT)} imports a handler"


def test_entry_points_reach_adapters_only_through_bootstrap() -> None:
    for path in [*modules_in("functions"), *modules_in("cli"), PKG / "demo.py", PKG / "simulate.py"]:
        bad = hits(imports_of(path), ("relaunch.adapters",))
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_nothing_imports_the_cli() -> None:
    for path in PKG.rglob("*.py"):
        if path.name != "__main__.py" and (PKG / "cli") not in path.parents:  # __main__: `python -m relaunch`
            assert not hits(imports_of(path), ("relaunch.cli",)), path


def test_no_sdk_at_module_top_anywhere_in_the_package() -> None:
    for path in PKG.rglob("*.py"):
        sdk = (
            "google.cloud.aiplatform",
            "google.cloud.pubsub",
            "google.cloud.firestore",
            "google.cloud.devtools",
            "google.cloud.storage",
            "google.api_core",
            "google.auth",
            "vertexai",
            "wandb",
            "github",
        )
        assert not hits(imports_of(path, top_level_only=True), sdk), path


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is not installed (pip install -e '.[test]')")
def test_ruff_is_clean() -> None:
    done = subprocess.run(["ruff", "check", "src", "tests", "benchmarks"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]


@pytest.mark.skipif(shutil.which("mypy") is None, reason="mypy is not installed (pip install -e '.[test]')")
def test_mypy_is_clean_on_src() -> None:
    done = subprocess.run(["mypy", "src"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]


def test_the_deploy_source_serves_each_function_by_name_and_only_loads_that_one() -> None:
    code = (
        "import importlib.util, sys; spec = importlib.util.spec_from_file_location('main', 'functions/main.py'); "
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); f = m.github_webhook; "
        "print(callable(f), 'relaunch.functions.orchestrator' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, env=SECRETS_ENV
    )
    assert done.stdout.split() == ["True", "False"]
