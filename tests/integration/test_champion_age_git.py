"""The champion never gets older by accident, judged by git itself: the orchestrator with LocalGitHistory on a repo."""

from __future__ import annotations

from pathlib import Path

from relaunch import bootstrap
from relaunch.adapters.github.history import GitHubHistory
from relaunch.adapters.local.history import LocalGitHistory
from relaunch.adapters.local.sqlite_store import SqliteRunStore
from relaunch.domain.model import RunState
from tests.integration.test_functions import settings
from tests.integration.test_local_history import force_pushed
from tests.unit.test_champion_age import gate, world


def repository(tmp_path: Path) -> tuple[str, list[str]]:
    repo, shas = force_pushed(tmp_path)
    return repo.as_uri(), shas


def test_a_late_push_of_an_ancestor_is_refused_and_force_promotes_it(tmp_path: Path) -> None:
    url, (one, two, three, _) = repository(tmp_path)
    w = world(LocalGitHistory(tmp_path / "cache"))
    assert gate(w, 2, sha=two, clone_url=url).state is RunState.PROMOTED
    assert gate(w, 3, sha=three, clone_url=url).state is RunState.PROMOTED  # ahead: goes on
    late = gate(w, 1, sha=one, clone_url=url)
    assert late.state is RunState.REJECTED and late.reason.startswith(f"commit {one[:7]} is older than")
    assert w.registry.champions["digits"] == "v2"
    forced = gate(w, 5, sha=one, clone_url=url, force=True)
    assert forced.state is RunState.PROMOTED and w.registry.champions["digits"] == "v3"


def test_after_a_force_push_the_spec_decides(tmp_path: Path) -> None:
    url, (_, _, three, four) = repository(tmp_path)
    w = world(LocalGitHistory(tmp_path / "cache"))
    gate(w, 3, sha=three, clone_url=url)
    refused = gate(w, 4, sha=four, clone_url=url)
    assert refused.state is RunState.REJECTED and "gate.on_force_push: allow" in refused.reason


def test_bootstrap_wires_git_locally_and_githubs_compare_api_on_gcp(tmp_path: Path) -> None:
    local = bootstrap.App(settings(tmp_path))
    assert isinstance(local.orchestrator.d.history, LocalGitHistory)
    assert isinstance(bootstrap.App(settings(tmp_path, history="github")).history, GitHubHistory)
    assert isinstance(bootstrap.App(settings(tmp_path, profile="gcp")).history, GitHubHistory)
    assert isinstance(local.store, SqliteRunStore)
    local.store.close()
