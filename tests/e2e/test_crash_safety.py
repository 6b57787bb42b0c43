"""Crash safety: kill -9 `relaunch up` at random points across several runs, restart it on the same home, and find
every run ended exactly once with no side effect done twice.

Side effects counted: training/evaluation submissions (the local agent's queue rows), model registrations (the
registry's versions per run), deployments (the endpoint's deployed versions, the deploy statuses) and GitHub
commit statuses (the timeline's `github.status` entries per run, context and state, which the local notifier
records exactly as they would be sent). The kill points come from a seeded random: a failure names its seed, and
RELAUNCH_CRASH_SEED=N replays it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from relaunch.adapters.local.registry import LocalRegistry
from relaunch.bootstrap import App
from relaunch.config_files import load_specs
from relaunch.demo import demo_specs
from relaunch.domain.model import PipelineRun, RunState
from relaunch.settings import Settings
from relaunch.simulate import git, push_payload, send_github
from tests.stack_process import Killed, StackProcess

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
REPO = "relaunch-demo/digits"  # watched by pipelines/digits.yaml
SECRET = "crash-secret"
PUSHES, KILLS = 4, 3
SEED = int(os.environ.get("RELAUNCH_CRASH_SEED", "5"))
KILL_AFTER_S = (0.05, 2.5)  # a digits run takes 2-3 s: kills land in build, train, evaluate or rollout
SETTLE_S = 120.0


def make_repo(dest: Path) -> Path:
    """A git repository of the digits example, as the demo makes it."""
    shutil.copytree(ROOT / "examples" / "digits", dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    git(dest, "init", "-q", "-b", "main")
    git(dest, "config", "user.name", "crash test")
    git(dest, "config", "user.email", "crash@relaunch.invalid")
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", "Digits classifier")
    return dest


def commit_params(repo: Path, n: int) -> None:
    """A new commit with an equally good model (the gate may promote or, after a race, reject it)."""
    (repo / "params.json").write_text(json.dumps({"C": 1.1 + n / 10, "max_iter": 2000}) + "\n")
    git(repo, "commit", "-qam", f"Tune C ({n})")


def deliver(stack: StackProcess, payload: dict[str, object], delivery: str) -> requests.Response:
    return send_github(stack.urls["github_webhook"], "push", payload, SECRET, delivery)


def runs_of(app: App) -> list[PipelineRun]:
    return app.store.list_runs(limit=1000)


def wait_until_settled(app: App, expected: int, where: str) -> list[PipelineRun]:
    deadline = time.monotonic() + SETTLE_S
    while True:
        runs = runs_of(app)
        if len(runs) == expected and all(run.state.terminal for run in runs):
            return runs
        if time.monotonic() > deadline:
            stuck = {run.id: run.state.value for run in runs if not run.state.terminal}
            pytest.fail(f"{where}: {len(runs)}/{expected} runs, not terminal after {SETTLE_S:.0f}s: {stuck}")
        time.sleep(0.1)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_kill9_at_random_points_leaves_every_run_done_once(tmp_path: Path, home: Path) -> None:
    rng = random.Random(SEED)
    where = f"seed {SEED} (RELAUNCH_CRASH_SEED={SEED} replays it)"
    env = {
        **os.environ,
        "RELAUNCH_HOME": str(home),
        # Copies of the shipped specs cloning the scratch repo: a run clones only the URL its spec names.
        "RELAUNCH_PIPELINES_DIR": str(demo_specs(ROOT / "pipelines", tmp_path / "pipelines", tmp_path / "digits")),
        "RELAUNCH_GITHUB_WEBHOOK_SECRET": SECRET,
    }
    repo = make_repo(tmp_path / "digits")
    stack = StackProcess(env, home, tmp_path / "up.log").start()
    app = App(Settings(home=home))
    sent: list[tuple[dict[str, object], str]] = []
    kills: list[tuple[float, dict[str, str], Killed]] = []
    try:
        before = None
        for n in range(PUSHES):
            commit_params(repo, n)
            payload, delivery = push_payload(repo, full_name=REPO, before=before), f"crash-{SEED}-{n}"
            before = str(payload["after"])
            reply = deliver(stack, payload, delivery)
            assert reply.status_code == 202, f"{where}: push {n}: {reply.status_code} {reply.text}"
            sent.append((payload, delivery))
            if n < KILLS:
                delay = rng.uniform(*KILL_AFTER_S)
                time.sleep(delay)
                states = {run.id: run.state.value for run in runs_of(app)}
                kills.append((delay, states, stack.kill9()))
                stack.start()
        runs = wait_until_settled(app, PUSHES, where)
        for payload, delivery in sent:  # GitHub redelivers: every redelivery is a duplicate that starts nothing
            again = deliver(stack, payload, delivery)
            assert again.status_code == 200 and again.json()["outcome"] == "duplicate", f"{where}: {again.text}"
        time.sleep(1.0)  # let anything a redelivery might have nudged happen before counting
        runs = wait_until_settled(app, PUSHES, where)
    finally:
        code = stack.stop()
    report = f"{where}; kills (after s, run states then): {[(round(d, 2), s) for d, s, _ in kills]}"
    print(report)
    print("ends:", [(run.id, run.state.value, run.reason[:160]) for run in runs])
    assert code == 0, f"{where}: the restarted stack did not stop cleanly ({code})"
    assert any(state not in _terminal_values() for _, states, _ in kills for state in states.values()), (
        f"no kill landed while a run was in flight: {report}"
    )
    assert_no_function_outlived_its_stack(kills, report)
    assert_each_delivery_started_one_run(app, sent, runs, report)
    assert_one_terminal_state_per_run(app, runs, report)
    assert_no_duplicate_submission(home, runs, report)
    assert_no_duplicate_registration_or_deployment(app, home, runs, report)
    assert_no_duplicate_status(app, runs, report)


def _terminal_values() -> set[str]:
    return {state.value for state in RunState if state.terminal}


def assert_no_function_outlived_its_stack(kills: list[tuple[float, dict[str, str], Killed]], report: str) -> None:
    survivors = [killed.surviving_functions for _, _, killed in kills if killed.surviving_functions]
    assert not survivors, f"functions outlived a kill -9 of their stack: {survivors}; {report}"
    jobs = [killed.surviving_jobs for _, _, killed in kills if killed.surviving_jobs]
    assert not jobs, f"training/evaluation jobs outlived a kill -9 of their stack: {jobs}; {report}"


def assert_each_delivery_started_one_run(
    app: App, sent: list[tuple[dict[str, object], str]], runs: list[PipelineRun], report: str
) -> None:
    started = []
    for _, delivery in sent:
        row = app.store.get_delivery(f"github:{delivery}")
        assert row is not None and len(row.run_ids) == 1, f"{delivery}: {row}; {report}"
        started += row.run_ids
    assert sorted(started) == sorted(run.id for run in runs), report


def assert_one_terminal_state_per_run(app: App, runs: list[PipelineRun], report: str) -> None:
    for run in runs:
        ends = [e.data["to"] for e in app.store.timeline(run.id) if e.kind == "state" and e.data.get("to")]
        terminal = [state for state in ends if state in _terminal_values()]
        assert terminal == [run.state.value], f"run {run.id} went {ends}; {report}"


def assert_no_duplicate_submission(home: Path, runs: list[PipelineRun], report: str) -> None:
    with sqlite3.connect(home / "agent.db") as db:
        rows = db.execute("SELECT key, request FROM jobs").fetchall()
    per_key = Counter(key for key, _ in rows)
    assert all(count == 1 for count in per_key.values()), f"agent queue rows per key: {per_key}; {report}"
    per_step = Counter((json.loads(req)["run_id"], json.loads(req)["step"]) for _, req in rows)
    allowed = 1 + load_specs(ROOT / "pipelines")["digits"].train.max_retries  # infrastructure retries may resubmit
    assert all(count <= allowed for count in per_step.values()), f"jobs per (run, step): {per_step}; {report}"
    for run in runs:
        for step, job_id in run.jobs.items():
            assert (run.id, step) in per_step, f"run {run.id} names {step} job {job_id} the agent never had; {report}"


def assert_no_duplicate_registration_or_deployment(app: App, home: Path, runs: list[PipelineRun], report: str) -> None:
    assert isinstance(app.registry, LocalRegistry)
    versions = app.registry.list_versions("digits")
    per_run = Counter(v.run_id for v in versions)
    assert all(count == 1 for count in per_run.values()), f"registry versions per run: {per_run}; {report}"
    promoted = [run for run in runs if run.state is RunState.PROMOTED]
    assert promoted, f"no run was promoted: {[(r.id, r.state.value, r.reason) for r in runs]}; {report}"
    for run in promoted:
        assert [v.version for v in versions if v.run_id == run.id] == [run.model_version], report
    deployed = json.loads((home / "endpoint.json").read_text())["endpoints"]["digits"]["deployed"]
    names = [d["version"] for d in deployed]
    assert len(names) == len(set(names)), f"endpoint deployed {names}; {report}"
    champion = app.registry.champion("digits")
    assert champion is not None and champion.version in names, f"champion {champion} not deployed: {names}; {report}"


def assert_no_duplicate_status(app: App, runs: list[PipelineRun], report: str) -> None:
    for run in runs:
        statuses = Counter(
            (e.data["context"], e.data["state"]) for e in app.store.timeline(run.id) if e.kind == "github.status"
        )
        twice = {status: count for status, count in statuses.items() if count > 1}
        assert not twice, f"run {run.id} ({run.state.value}) posted statuses more than once: {twice}; {report}"
        if run.state is RunState.PROMOTED:
            assert statuses[("relaunch/deploy", "success")] == 1, f"run {run.id}: {statuses}; {report}"


SWEEP_TRIALS = 6


def trial_rows(home: Path) -> list[tuple[str, str, float | None]]:
    """(key, state, finished_at) of every trial job the agent was given."""
    with sqlite3.connect(home / "agent.db") as db:
        rows = db.execute("SELECT key, state, finished_at FROM jobs WHERE key LIKE '%:trial:%'").fetchall()
    return [(str(key), str(state), finished) for key, state, finished in rows]


def wait_for_trials(home: Path, done: int, where: str) -> list[tuple[str, str, float | None]]:
    deadline = time.monotonic() + SETTLE_S
    while True:
        rows = trial_rows(home)
        if sum(state == "succeeded" for _, state, _ in rows) >= done:
            return rows
        if time.monotonic() > deadline:
            pytest.fail(f"{where}: {done} trials never succeeded: {rows}")
        time.sleep(0.05)


def test_kill9_mid_sweep_loses_no_finished_trial_and_runs_none_twice(tmp_path: Path, home: Path) -> None:
    from relaunch.demo_sweep import SWEEP, with_sweep

    specs = demo_specs(ROOT / "pipelines", tmp_path / "pipelines", tmp_path / "digits")
    with_sweep(specs / "digits.yaml")
    spec_text = (specs / "digits.yaml").read_text().replace(f"max_trials: {SWEEP['max_trials']}", "max_trials: 6")
    (specs / "digits.yaml").write_text(spec_text)
    env = {**os.environ, "RELAUNCH_HOME": str(home), "RELAUNCH_PIPELINES_DIR": str(specs)}
    env["RELAUNCH_GITHUB_WEBHOOK_SECRET"] = SECRET
    repo = make_repo(tmp_path / "digits")
    stack = StackProcess(env, home, tmp_path / "up.log").start()
    app = App(Settings(home=home))
    finished_before: dict[str, float | None] = {}
    try:
        reply = deliver(stack, push_payload(repo, full_name=REPO, before=None), "sweep-crash")
        assert reply.status_code == 202, reply.text
        for done in (1, 3):  # kill -9 with a trial or more finished and others running, twice
            rows = wait_for_trials(home, done, "sweep")
            finished_before |= {key: at for key, state, at in rows if state == "succeeded"}
            killed = stack.kill9()
            assert not killed.surviving_jobs, f"trial jobs outlived the kill: {killed.surviving_jobs}"
            stack.start()
        [run] = wait_until_settled(app, 1, "sweep")
    finally:
        code = stack.stop()
    assert code == 0
    assert run.state is RunState.PROMOTED, f"{run.state.value}: {run.reason}"
    rows = trial_rows(home)
    assert Counter(key for key, _, _ in rows) == Counter({key for key, _, _ in rows}), rows  # each key once
    for key, at in finished_before.items():  # a trial that had finished was never run again
        assert (key, "succeeded", at) in rows, f"{key} changed after the kill: {rows}"
        assert not [k for k, _, _ in rows if k.startswith(key + ":")], f"{key} ran again: {rows}"
    trials = [e.data for e in app.store.timeline(run.id) if e.kind == "trial"]
    numbers = [t["trial"] for t in trials]
    assert sorted(numbers) == list(range(SWEEP_TRIALS)), f"trials on the timeline: {numbers}"  # none lost, none twice
    assert sum(t["state"] == "succeeded" for t in trials) >= len(finished_before)
