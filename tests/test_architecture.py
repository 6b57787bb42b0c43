"""The project's own promises about structure: import budgets, dependency rules, lint and types."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

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


# Webhook functions refuse every delivery without their secrets (fail closed): give them some.
SECRETS_ENV = {**os.environ, "RELAUNCH_GITHUB_WEBHOOK_SECRET": "s", "RELAUNCH_WANDB_WEBHOOK_TOKEN": "t"}


# Validators built when a function is imported: Settings (every first request builds it anyway) and the price table
# (a module constant of domain/cost.py). Every other model builds its validator on first use (defer_build).
BUILT_AT_IMPORT = {"relaunch.settings.Settings", "relaunch.domain.cost.PriceTable"}
BUILT_MODELS = """
def built():
    from pydantic import BaseModel
    return sorted(f"{c.__module__}.{c.__qualname__}" for c in _subclasses(BaseModel) if c.__pydantic_complete__
                  and c.__module__.startswith("relaunch."))

def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)
"""


def test_function_processes_load_no_sdk_and_no_model_library() -> None:
    code = "import sys, json, relaunch.functions.main as m\nfor name in m.ENTRY_POINTS: getattr(m, name)\n"
    code += BUILT_MODELS + "print(json.dumps([sorted(sys.modules), built()]))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=SECRETS_ENV)
    modules, built = json.loads(done.stdout)
    loaded = set(modules)
    assert "relaunch.functions.drift_alert" in loaded  # every entry point was really loaded
    assert hits(loaded, SDKS) == set()
    assert set(built) <= BUILT_AT_IMPORT  # importing a function builds no other validator: each is built when used


# Each function process after answering its first request (tests/first_requests.py, the requests
# benchmarks/cold_start.py times), its specs compiled: what a cold start must not pay for before that answer.
# The SDKs (requests: HTTP clients connect lazily), the YAML parser, and pydantic-settings' machinery (RELAUNCH_*
# variables are read by relaunch.settings_env: about 30 ms of every cold start went to importing it).
NEVER_BEFORE_FIRST_ANSWER = (*SDKS, "yaml", "pydantic_settings", "dotenv")
# A process that only keeps deliveries: not the orchestrator, its steps, its training adapters, nor prices.
INGEST_ONLY = (
    *NEVER_BEFORE_FIRST_ANSWER,
    *("relaunch.service.orchestrator", "relaunch.bootstrap.training", "relaunch.domain.cost"),
    *("relaunch.adapters.local.endpoint", "relaunch.adapters.local.endpoint_state"),
)
NOT_BEFORE_FIRST_ANSWER: dict[str, tuple[str, ...]] = {
    "github_webhook": (*INGEST_ONLY, "relaunch.service.ingest_events", "relaunch.service.ingest_replay"),
    "wandb_webhook": INGEST_ONLY,
    "orchestrator": (*NEVER_BEFORE_FIRST_ANSWER, "relaunch.service.ingest"),  # the inbox's path: retrain requests
    "drift_alert": INGEST_ONLY,
    "schedule_tick": INGEST_ONLY,
    "build_status": INGEST_ONLY,
    "vertex_job": INGEST_ONLY,
    # A tick that finds no active run (most ticks of a quiet project) builds no orchestrator: housekeeping only.
    "reconcile": (*NEVER_BEFORE_FIRST_ANSWER, "relaunch.service.orchestrator", "relaunch.bootstrap.training"),
    "dashboard": (*NEVER_BEFORE_FIRST_ANSWER, "relaunch.service.orchestrator"),
}
SPEC_MODULES = ("spec", "spec_sweep", "spec_approval", "spec_environments", "spec_tracking", "sweep", "rollout")
NEVER_BUILT = tuple(f"relaunch.domain.{module}" for module in SPEC_MODULES)
# Forks one process per function after loading what every functions-framework process loads; each answers its
# request in-process and reports its status, its modules and the models whose validators it has built.
FIRST_ANSWER = (
    """
import base64, gc, importlib.metadata, json, os, sys
import functions_framework
"""
    + BUILT_MODELS
    + """
source, home = sys.argv[1:]
children = []
HOLD = {"relaunch", "relaunch.functions", "relaunch.functions.cold_start"}  # imported to hold the collector

def loading():  # relaunch's start is under way (a module of it beyond those that hold the collector is loaded) and
    # not over (the first answer froze what it built: the collections after it are the process's ordinary ones)
    return gc.get_freeze_count() == 0 and any(n.startswith("relaunch.") and n not in HOLD for n in list(sys.modules))
for name, (method, path, body, headers) in json.load(sys.stdin).items():
    sys.stdout.flush(); sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        try:
            os.environ["RELAUNCH_HOME"] = os.path.join(home, name)
            collections, scans = [], []
            gc.callbacks.append(lambda phase, info: phase == "start" and loading() and collections.append(phase))
            listing = importlib.metadata.distributions  # what a scan of the installed packages' entry points calls
            importlib.metadata.distributions = lambda *a, **k: scans.append(1) or listing(*a, **k)
            app = functions_framework.create_app(name, source)
            client = app.test_client()  # flask's test helpers imported before the request: not the function's doing
            reply = client.open(path, method=method, data=base64.b64decode(body), headers=headers)
            found = {"status": reply.status_code, "modules": sorted(sys.modules)}
            found["built"] = built() if "pydantic" in sys.modules else []
            found["collections"], found["scans"] = len(collections), len(scans)
            found["collector"] = {"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}
        except BaseException as exc:
            found = {"status": repr(exc), "modules": [], "built": []}
        with open(os.path.join(home, name + ".json"), "w") as out:
            json.dump(found, out)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
"""
)


def first_answers(home: Path) -> dict[str, dict[str, object]]:
    """Per function: what a process of it holds after answering its first request."""
    import base64

    from relaunch.bootstrap import App
    from relaunch.settings import Settings
    from tests.first_requests import PROBES, SECRET

    probes = {}
    for name, make in PROBES.items():
        method, path, body, headers = make()
        probes[name] = [method, path, base64.b64encode(body).decode(), headers]
    env = {
        **os.environ,
        "RELAUNCH_GITHUB_WEBHOOK_SECRET": SECRET,
        "RELAUNCH_WANDB_WEBHOOK_TOKEN": SECRET,
        "RELAUNCH_PIPELINES_DIR": str(ROOT / "pipelines"),
    }
    for name in probes:  # as any start after the first finds it: the specs compiled (a cold one parses YAML)
        App(Settings(home=home / name, pipelines_dir=ROOT / "pipelines")).specs()
    source = str(PKG / "functions" / "main.py")
    subprocess.run(
        [sys.executable, "-c", FIRST_ANSWER, source, str(home)],
        input=json.dumps(probes),
        text=True,
        env=env,
        check=True,
    )
    return {name: json.loads((home / f"{name}.json").read_text()) for name in probes}


def test_each_function_answers_its_first_request_without_what_it_does_not_need(tmp_path: Path) -> None:
    from relaunch.functions.main import ENTRY_POINTS

    found = first_answers(tmp_path)
    assert set(found) == set(ENTRY_POINTS) == set(NOT_BEFORE_FIRST_ANSWER)  # every function, each with its budget
    for name, seen in found.items():
        assert isinstance(seen["status"], int) and 200 <= seen["status"] < 300, (name, seen["status"])
        loaded = set(seen["modules"])  # type: ignore[call-overload]
        assert f"relaunch.functions.{name}" in loaded
        assert (name, sorted(hits(loaded, NOT_BEFORE_FIRST_ANSWER[name]))) == (name, [])
        built = set(seen["built"])  # type: ignore[call-overload]
        # Validators are built on first use, and the specs come compiled: none of the specs' models is built.
        assert (name, hits(built, NEVER_BUILT)) == (name, set())
        # No garbage collection while relaunch loads and answers (functions-framework's own start before it may
        # collect: not ours to hold), no plugin scan; then collection resumes, the start's objects frozen out of its
        # way (relaunch.functions.cold_start).
        assert (name, seen["collections"], seen["scans"]) == (name, 0, 0)
        assert seen["collector"]["enabled"] and seen["collector"]["frozen"] > 10_000, (name, seen["collector"])  # type: ignore[index]


# The layers, bottom up: a module imports only from its own layer or below (imports inside functions count too).
LAYERS: dict[str, int] = {
    "domain": 0,
    "textsafe": 0,
    "triggers": 1,
    "settings": 2,
    "handoff": 2,
    "settings_env": 2,
    "config_files": 2,
    "logs": 2,
    "service": 3,
    "adapters": 4,
    "bootstrap": 5,
    "dashboard": 5,
    "functions": 6,
    "deploy": 6,
    "demo": 6,
    "demo_sweep": 6,
    "demo_environments": 6,
    "emulated": 6,
    "doctor": 6,
    "housekeeping": 6,
    "simulate": 6,
    "cli": 7,
    "__main__": 8,
}
IO = ("os", "socket", "subprocess", "sqlite3", "http", "urllib", "logging", "pathlib.Path", "threading", "random")
CLOCK = {("time", "time"), ("time", "monotonic"), ("datetime", "now"), ("datetime", "utcnow")}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Each relaunch module and the relaunch modules it imports, at any depth of its code."""
    modules = {module_name(path): path for path in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from pkg import submodule` depends on the submodule; `from module import name` on the module
                subs = {f"{node.module}.{alias.name}" for alias in node.names} & modules.keys()
                deps.update(subs if len(subs) == len(node.names) else {node.module, *subs})
        graph[name] = {d for d in deps if d in modules and d not in (name, "relaunch")}
    return graph


def layer_of(module: str) -> str:
    return module.split(".")[1] if "." in module else "__init__"


def test_imports_point_down_the_layers() -> None:
    upward = [
        f"{m} ({layer_of(m)}) imports {d} ({layer_of(d)})"
        for m, deps in import_graph().items()
        for d in deps
        if LAYERS.get(layer_of(d), 99) > LAYERS.get(layer_of(m), 99)
    ]
    assert upward == []


def test_only_the_cli_reaches_the_stand_ins() -> None:
    """relaunch.emulated (stand-ins of cloud services, the gcp-emulated demo) is never in a deployed function."""
    reaching = sorted(
        f"{m} imports {d}"
        for m, deps in import_graph().items()
        for d in deps
        if layer_of(d) == "emulated" and layer_of(m) not in ("emulated", "cli")
    )
    assert reaching == []


def test_there_is_no_import_circle() -> None:
    graph, seen, circles = import_graph(), set[str](), []
    for start in sorted(graph):  # a depth-first walk from each module, remembering the path
        stack: list[tuple[str, list[str]]] = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for dep in sorted(graph[node]):
                if dep == start:
                    circles.append(" -> ".join([*path, dep]))
                elif dep not in path and dep not in seen:
                    stack.append((dep, [*path, dep]))
        seen.add(start)
    assert circles == []


def test_no_module_is_over_400_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in PKG.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_the_domain_does_no_io_reads_no_clock_and_loads_no_sdk() -> None:
    for path in modules_in("domain"):
        bad = hits(imports_of(path), (*IO, *SDKS, "yaml"))
        calls = {
            f"{node.func.value.id}.{node.func.attr}()"
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and (node.func.value.id, node.func.attr) in CLOCK
        }
        assert not bad and not calls, f"{path.relative_to(ROOT)} imports {bad}, calls {calls}"


def test_the_parsers_import_no_adapter_function_or_sdk() -> None:
    for path in modules_in("triggers"):
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
    demos = [PKG / "demo.py", PKG / "demo_sweep.py", PKG / "demo_environments.py", PKG / "simulate.py"]
    for path in [*modules_in("functions"), *modules_in("cli"), *demos]:
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


def test_ruff_is_clean() -> None:
    command = [sys.executable, "-m", "ruff", "check", "src", "tests", "benchmarks"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-1000:]


def test_mypy_is_clean() -> None:
    done = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-1000:]


def test_no_test_skips_on_the_projects_own_modules() -> None:
    needle = "importorskip(" + '"relaunch'
    for path in (ROOT / "tests").rglob("*.py"):
        assert needle not in path.read_text(), path


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
