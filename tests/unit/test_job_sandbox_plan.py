"""The job sandbox's plan: pure functions from paths to what is hidden, what is kept, and the command prefix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relaunch.adapters.local.sandbox import (
    RUNNER,
    SandboxUnavailable,
    choose,
    command_prefix,
    describe,
    mount_plan,
    run_folder,
)

HOME = Path("/srv/relaunch")
WORK = HOME / "workspaces" / "digits-1"
RUN = HOME / "artifacts" / "runs" / "digits-1"


def test_the_home_is_hidden_and_only_the_jobs_own_folders_come_back() -> None:
    plan = mount_plan(HOME, WORK, RUN, as_root=False)
    assert (plan.hide, plan.keep, plan.read_only, plan.workdir) == (HOME, (WORK, RUN), (RUN / "inputs",), WORK)
    assert plan.user_ns  # a normal user needs a user namespace to mount anything
    assert not mount_plan(HOME, WORK, RUN, as_root=True).user_ns


def test_environments_under_the_home_bind_only_the_jobs_own_and_shared_ones_all_read_only() -> None:
    own = HOME / "envs" / "abc"
    plan = mount_plan(HOME, WORK, RUN, as_root=True, environment=own, envs_dir=HOME / "envs")
    assert plan.read_only == (RUN / "inputs", own)  # the others stay under the hidden home
    shared = Path("/var/cache/relaunch-envs")
    plan = mount_plan(HOME, WORK, RUN, as_root=True, environment=shared / "abc", envs_dir=shared)
    assert plan.read_only == (RUN / "inputs", shared)  # not hidden with the home: every one read-only


def test_folders_outside_the_home_are_not_hidden_so_not_bound() -> None:
    plan = mount_plan(HOME, Path("/checkouts/digits-1"), Path("/data/runs/digits-1"), as_root=True)
    assert (plan.keep, plan.read_only) == ((), ())


@pytest.mark.parametrize(
    ("home", "work", "run", "field"),
    [
        (Path("/"), WORK, RUN, "home"),
        (Path("relative"), WORK, RUN, "home"),
        (HOME, HOME, RUN, "workdir"),
        (HOME, Path("/srv"), RUN, "workdir"),
        (HOME, WORK, HOME / "artifacts" / ".." / "x", "run_dir"),
        (HOME, WORK, Path("runs/x"), "run_dir"),
    ],
)
def test_a_plan_that_would_hide_nothing_or_show_the_home_is_refused(
    home: Path, work: Path, run: Path, field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        mount_plan(home, work, run, as_root=False)


@pytest.mark.parametrize("run_id", ["..", ".", "a/b", "../x", "", "-rf", "x\udc80", "a\nb", "x" * 201])
def test_a_run_id_that_is_not_one_plain_folder_name_is_refused(run_id: str) -> None:
    with pytest.raises(ValueError, match="run_id"):
        run_folder(HOME / "runs", run_id)


def test_the_prefix_runs_the_runner_isolated_with_the_plan_and_ends_its_options() -> None:
    plan = mount_plan(HOME, WORK, RUN, as_root=False)
    prefix = command_prefix(plan, python="/usr/bin/python3")
    assert prefix[:3] == ["/usr/bin/python3", "-I", str(RUNNER)] and prefix[-1] == "--"
    assert json.loads(prefix[3]) == {
        "hide": str(HOME),
        "keep": [str(WORK), str(RUN)],
        "read_only": [str(RUN / "inputs")],
        "workdir": str(WORK),
        "user_ns": True,
    }


def test_the_mode_decides_with_the_probes_answer() -> None:
    assert choose("off", HOME, RUN, None) is None
    assert choose("auto", HOME, RUN, "no user namespaces") is None
    sandbox = choose("auto", HOME, HOME / "artifacts" / "runs", None)
    assert sandbox is not None and sandbox.home == HOME.resolve()
    with pytest.raises(SandboxUnavailable, match="required.*no user namespaces"):
        choose("required", HOME, RUN, "no user namespaces")
    assert "unsandboxed" in describe("auto", "no user namespaces") and "refuse" in describe("required", "x")
