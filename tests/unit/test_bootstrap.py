"""The composition root: fakes go in by service name, and a name that is no service is refused, not ignored."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from relaunch import bootstrap
from relaunch.adapters.local import stack
from relaunch.settings import Settings
from tests.fakes import FakeBackend, FakeNotifier


def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", pipelines_dir=tmp_path / "pipelines")


def test_an_override_replaces_the_service_of_its_name_and_the_others_are_still_built(tmp_path: Path) -> None:
    fake = FakeBackend()
    app = bootstrap.App(settings(tmp_path), overrides={"backend": fake})
    assert app.backend is fake
    assert app.store.list_runs() == []  # not overridden: the local adapter, built on first use


def test_a_misspelt_override_is_a_type_error_naming_it_and_the_services(tmp_path: Path) -> None:
    with pytest.raises(TypeError) as refused:
        bootstrap.App(settings(tmp_path), overrides={"notifer": FakeNotifier(), "backend": FakeBackend()})
    message = str(refused.value)
    assert "'notifer'" in message and "'backend'" not in message
    assert all(name in message for name in ("notifier", "store", "orchestrator", "specs"))


def test_the_services_are_the_apps_lazily_built_attributes_only() -> None:
    services = bootstrap.App.services()
    assert {"store", "bus", "backend", "notifier", "ingest", "orchestrator", "specs"} <= set(services)
    assert "settings" not in services and "artifact_root" not in services  # not replaceable: given, or derived


def test_the_stack_supervises_and_builds_no_adapter_of_its_own() -> None:
    source = Path(stack.__file__).read_text()
    imported = {
        node.module
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("relaunch.")
    }
    assert "relaunch.bootstrap" not in imported  # the composition root hands it its wiring: bootstrap.App
    adapters = {name for name in imported if name.startswith("relaunch.adapters.")}
    own = {
        f"relaunch.adapters.local.{name}"
        for name in ("periodic", "state_folder", "stack_ports", "stack_warm", "listeners")
    }  # no adapter
    assert adapters <= own


def test_the_embedded_stack_is_wired_by_the_app_of_its_settings(tmp_path: Path) -> None:
    built = bootstrap.embedded_stack(settings(tmp_path), functions=("github_webhook",))
    assert built.wiring is bootstrap.App and built.functions == ("github_webhook",)
    assert bootstrap.embedded_stack(settings(tmp_path)).functions == stack.FUNCTIONS


def test_the_local_training_backend_loads_optuna_only_for_a_sweep(tmp_path: Path) -> None:
    code = (
        "import sys; from relaunch.bootstrap import App; from relaunch.settings import Settings\n"
        f"app = App(Settings(home={str(tmp_path)!r}))\n"
        "assert app.training.sweeps.owns('sweep-0123') and not app.training.sweeps.owns('job-1')\n"
        "print('optuna' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr  # about 0.8 s of imports an orchestrator never needs otherwise
