"""`relaunch demo --environments`: the demo pipeline with two environments, staging then production.

Two pushes of the digits example each start a run that climbs: into staging (its own endpoint, `digits-staging`),
then, once the model has served staging for BAKE_S seconds and answered the smoke predictions there, into production
(the `digits` endpoint). Production requires an approval: each run waits in awaiting_approval once its bake in
staging is over, and the demo approves it as an operator would, with `relaunch approve RUN` (the command itself, run
against the stack's home). Production is then rolled back to the first model through the service call `relaunch
rollback digits --env production` makes, while staging keeps serving the second; the story ends with what `relaunch
status digits` prints.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml
from pydantic import SecretStr

from relaunch import bootstrap
from relaunch.bootstrap import embedded_stack
from relaunch.demo import DemoFailed, EmbeddedTarget, Narrator, demo_specs, make_repo, project_root, push_and_follow
from relaunch.domain.environments import PromotionRecord
from relaunch.domain.model import PipelineRun, RunState
from relaunch.domain.ports import EnvironmentAliases, PromotionHistory
from relaunch.settings import Settings
from relaunch.simulate import git
from relaunch.textsafe import safe_line

PIPELINE = "digits"
ENDPOINTS = {"staging": "digits-staging", "production": "digits"}
BAKE_S = 3.0  # production takes a model only after it served staging this long, healthy
SMOKE_ROWS = 2  # digits production's smoke test sends to the model's version in staging
BETTER_PARAMS = {"C": 0.3, "max_iter": 2000}  # a little more regularisation: a point better on the held-out split

Serving = tuple[str | None, dict[str, int]]  # an environment's alias, and its endpoint's traffic split


@dataclass(frozen=True)
class EnvironmentsOutcome:
    """What the story produced, for the exit code and for tests."""

    first: PipelineRun
    second: PipelineRun
    before: dict[str, Serving]
    after: dict[str, Serving]
    answers: dict[str, str | None]
    status: str
    wall_s: float


def run_environments_demo(home: Path | None = None, out: TextIO = sys.stdout) -> int:
    """Run the two-environment story and narrate it; 0 only if every promise held."""
    try:
        environments_scenario(home, out)
    except DemoFailed as exc:
        print(f"\ndemo FAILED: {exc}", file=out)
        return 1
    return 0


def environments_scenario(home: Path | None = None, out: TextIO = sys.stdout) -> EnvironmentsOutcome:
    """Start the embedded stack on the two-environment spec and tell the story; raise DemoFailed on a miss."""
    started = time.monotonic()
    root = project_root()
    work = Path(tempfile.mkdtemp(prefix="relaunch-env-demo-"))
    kept = home / "demo-pipelines" if home else work / "pipelines"  # with --home: for `relaunch history` after
    specs = environments_specs(root / "pipelines", kept, work / "digits")
    settings = Settings(
        home=home or work / "home", pipelines_dir=specs, github_webhook_secret=SecretStr(secrets.token_hex(16))
    )
    stack = embedded_stack(settings)
    try:
        stack.start()
        outcome = _story(EmbeddedTarget(stack), root / "examples" / "digits", work / "digits", out, started)
    finally:
        stack.stop()
        shutil.rmtree(work, ignore_errors=True)  # the throwaway repo, the specs naming it, a home not given
    if home is not None:
        print(f"\nthe history: RELAUNCH_HOME={home} RELAUNCH_PIPELINES_DIR={kept} relaunch history digits", file=out)
    return outcome


def environments_specs(source: Path, dest: Path, repo: Path | str) -> Path:
    """The demo's specs (`demo_specs`), the digits pipeline's endpoint and rollout replaced by its two environments."""
    from sklearn.datasets import load_digits

    specs = demo_specs(source, dest, repo)
    path = specs / f"{PIPELINE}.yaml"
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec.pop("endpoint", None)
    spec.pop("rollout", None)
    smoke = [[float(x) for x in row] for row in load_digits().data[:SMOKE_ROWS]]
    spec["environments"] = [
        {"name": "staging", "endpoint": ENDPOINTS["staging"], "rollout": {"strategy": "direct"}},
        {
            "name": "production",
            "endpoint": ENDPOINTS["production"],
            "rollout": {"strategy": "direct"},
            "min_bake_s": BAKE_S,
            "smoke": smoke,
            "approval": "required",
        },
    ]
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return specs


def _story(target: EmbeddedTarget, example: Path, repo_dir: Path, out: TextIO, started: float) -> EnvironmentsOutcome:
    app = target.app
    narrator = Narrator(app, out)
    narrator.say(target.describe())
    repo = make_repo(example, repo_dir)
    narrator.say(f"throwaway repo {repo}; climbing staging ({ENDPOINTS['staging']}), a {BAKE_S:.0f} s bake, production")
    first = _climb(app, narrator, _approved(target, narrator, push_and_follow(target, narrator, repo, None, _waits)))
    before_sha = git(repo, "rev-parse", "HEAD")
    (repo / "params.json").write_text(json.dumps(BETTER_PARAMS, indent=2) + "\n")
    git(repo, "commit", "-qam", f"Regularise a little more (C={BETTER_PARAMS['C']})")
    narrator.say(f"committed a better model: params.json -> {BETTER_PARAMS}")
    second = push_and_follow(target, narrator, repo, before_sha, _waits)
    second = _climb(app, narrator, _approved(target, narrator, second))
    before, after, answers = _roll_back_production(
        app, narrator, new=str(second.model_version), old=str(first.model_version)
    )
    settings = target.stack.settings
    status = cli_status(settings)
    narrator.say("relaunch status digits:")
    out.write(status)
    out.flush()
    wall = time.monotonic() - started
    narrator.say(f"done in {wall:.1f}s")
    return EnvironmentsOutcome(first, second, before, after, answers, status, wall)


def _waits(run: PipelineRun) -> bool:
    """Whether the run waits for an approval (the narrator follows a run until it does)."""
    return run.state is RunState.AWAITING_APPROVAL


def _approved(target: EmbeddedTarget, narrator: Narrator, run: PipelineRun) -> PipelineRun:
    """Approve the run's entry into production with `relaunch approve`, then follow it to its end."""
    _expect(run.awaiting == "environment:production", f"run {run.id} ended {run.state.value}: {run.reason}")
    narrator.say(f"production requires an approval: relaunch approve {run.id}")
    narrator.say(f"relaunch approve: {cli(target.stack.settings, 'approve', run.id).strip()}")
    return narrator.follow(run.id)


def _roll_back_production(
    app: bootstrap.App, narrator: Narrator, *, new: str, old: str
) -> tuple[dict[str, Serving], dict[str, Serving], dict[str, str | None]]:
    """Roll production back from `new` to `old`; check staging kept `new` (alias, traffic, the answering model)."""
    before = serving(app)
    _expect(before == {name: (new, {new: 100}) for name in ENDPOINTS}, f"after the climb: {before}")
    narrator.say("production turns out worse than staging showed: relaunch rollback digits --env production")
    back = app.orchestrator.roll_back(PIPELINE, "production")
    narrator.say(f"{back.id}: {safe_line(back.reason)}")
    after = serving(app)
    answers = {name: _answer(app, endpoint) for name, endpoint in ENDPOINTS.items()}
    _expect(after["production"] == (old, {old: 100}), f"production after the rollback: {after['production']}")
    _expect(after["staging"] == before["staging"], f"staging moved: {before['staging']} -> {after['staging']}")
    _expect(answers == {"staging": new, "production": old}, f"the endpoints answered from {answers}")
    narrator.say(f"rolled back production to {old}; staging still serves {new} (predictions: {answers})")
    return before, after, answers


def _climb(app: bootstrap.App, narrator: Narrator, run: PipelineRun) -> PipelineRun:
    """Check the run climbed staging then production, with the bake respected, and say how it went."""
    _expect(run.state is RunState.PROMOTED, f"run {run.id} ended {run.state.value}: {run.reason}")
    store = app.store
    if not isinstance(store, PromotionHistory):
        raise DemoFailed("the store keeps no promotion history")
    records: dict[str, PromotionRecord] = {}
    for record in store.promotions(PIPELINE):
        if record.run_id == run.id and record.kind == "promoted":
            records.setdefault(record.environment, record)
    staging, production = records.get("staging"), records.get("production")
    if staging is None or production is None:
        raise DemoFailed(f"run {run.id} was promoted without entering both environments: {sorted(records)}")
    waited = production.at - staging.at
    _expect(waited >= BAKE_S, f"{run.model_version} reached production {waited:.1f}s after staging (< {BAKE_S} s)")
    narrator.say(
        f"{run.model_version} climbed: staging, then production {waited:.1f}s later "
        f"(min_bake_s {BAKE_S:.0f}; checks: {'; '.join(production.checks)})"
    )
    return run


def serving(app: bootstrap.App) -> dict[str, Serving]:
    """Each environment's registry alias and its endpoint's traffic split."""
    registry = app.registry
    if not isinstance(registry, EnvironmentAliases):
        raise DemoFailed("the registry keeps no environment aliases")
    found: dict[str, Serving] = {}
    for name, endpoint in ENDPOINTS.items():
        alias = registry.alias(PIPELINE, name)
        found[name] = (alias.version if alias else None, app.endpoint.traffic(endpoint))
    return found


def _answer(app: bootstrap.App, endpoint: str) -> str | None:
    from sklearn.datasets import load_digits

    answer: dict[str, Any] = app.endpoint.predict(endpoint, load_digits().data[-3:].tolist())
    version = answer.get("model_version")
    return str(version) if version is not None else None


def cli_status(settings: Settings) -> str:
    """What `relaunch status digits` prints for this stack (the command itself, run against its home and specs)."""
    return cli(settings, "status", PIPELINE)


def cli(settings: Settings, *args: str) -> str:
    """What `relaunch ARGS` prints, run against this stack's home and specs; DemoFailed if it fails."""
    env = {**os.environ, "RELAUNCH_HOME": str(settings.home), "RELAUNCH_PIPELINES_DIR": str(settings.pipelines_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "relaunch", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise DemoFailed(f"relaunch {' '.join(args)} exited {done.returncode}: {safe_line(done.stderr.strip())}")
    return done.stdout


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise DemoFailed(message)
