"""A hostile training job on the embedded stack finds no secret: not in its environment, not in the environment or
command line of any process (its ancestors, the agent, the function processes, the supervisor), not in any file of
a folder above its working folder; and the stack's state is private (files 0600, folders 0700). Where the machine
allows the job sandbox, the same job finds no process of the stack and no file of its state at all.

The machine may run as root, so modes do not stop a same-user job here; the test checks them as the deployer's
protection against other OS users, and checks the rest by what the job could actually read.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import textwrap
import time
from pathlib import Path

import pytest

from relaunch.adapters.local.sandbox import probe
from relaunch.adapters.local.stack import free_port
from relaunch.simulate import git, push_payload, send_github
from tests.stack_process import StackProcess

pytestmark = pytest.mark.e2e
REPO = "attacker/hostile"
FOUND_WAIT_S = 120.0

# Dumps what a job can see: its own environment, /proc/<pid>/environ and cmdline of its ancestors and of every other
# process it can read, and every regular file directly in each folder from its working folder up to /.
HOSTILE = """
import json, os, sys
from pathlib import Path

def ppid(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    return 0

def read(path, limit=8 << 20):
    try:
        with open(path, "rb") as fh:
            return fh.read(limit).decode("latin-1")
    except OSError as exc:
        return f"<{type(exc).__name__}>"

ancestors, pid = [], os.getppid()
while pid > 1:
    ancestors.append(pid)
    pid = ppid(pid)
procs = {p.name: {"environ": read(p / "environ"), "cmdline": read(p / "cmdline")}
         for p in Path("/proc").iterdir() if p.name.isdigit() and int(p.name) != os.getpid()}
files = {}
for folder in [Path.cwd(), *Path.cwd().parents]:
    for entry in folder.iterdir():
        if entry.is_file() and not entry.is_symlink():
            files[str(entry)] = read(entry)
found = {"env": dict(os.environ), "ancestors": ancestors, "procs": procs, "files": files, "cwd": str(Path.cwd())}
Path(sys.argv[1]).write_text(json.dumps(found))
print("found", len(procs), "processes and", len(files), "files")
"""


def make_repo(dest: Path) -> Path:
    dest.mkdir()
    (dest / "hostile.py").write_text(HOSTILE)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "config", "user.name", "attacker")
    git(dest, "config", "user.email", "attacker@relaunch.invalid")
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", "Innocent change")
    return dest


def write_spec(folder: Path, repo: Path, out: Path) -> Path:
    folder.mkdir()
    spec = f"""
        name: hostile
        source:
          repo: {REPO}
          clone_url: {repo.resolve().as_uri()}
        train:
          command: [python, hostile.py, "{out}"]
          max_retries: 0
          timeout_s: 120
        evaluate:
          command: [python, hostile.py, "{out}.evaluate"]
          timeout_s: 120
        endpoint: hostile
    """
    (folder / "hostile.yaml").write_text(textwrap.dedent(spec))
    return folder


def wait_for_file(path: Path, stack: StackProcess) -> dict[str, object]:
    deadline = time.monotonic() + FOUND_WAIT_S
    while not path.exists():
        assert stack.process is not None and stack.process.poll() is None, "the stack died"
        if time.monotonic() > deadline:
            pytest.fail(f"the hostile job never wrote {path}")
        time.sleep(0.1)
    time.sleep(0.2)  # written in one call, but let the writer close it
    found: dict[str, object] = json.loads(path.read_text())
    return found


@pytest.mark.parametrize("sandbox", ["off", "required"])
def test_a_hostile_job_finds_no_secret_and_the_state_is_private(tmp_path: Path, sandbox: str) -> None:
    if sandbox == "required" and (why_not := probe()) is not None:
        pytest.skip(f"no job sandbox on this machine: {why_not}")
    home, out = tmp_path / "home", tmp_path / "found.json"
    closed = free_port()  # nothing listens: GitHub and Slack posts fail fast and stay on loopback
    planted = {
        "RELAUNCH_GITHUB_WEBHOOK_SECRET": secrets.token_hex(20),
        "RELAUNCH_GITHUB_TOKEN": "ghp_" + secrets.token_hex(18),
        "RELAUNCH_WANDB_API_KEY": secrets.token_hex(20),
        "RELAUNCH_SLACK_WEBHOOK_URL": f"http://127.0.0.1:{closed}/services/{secrets.token_hex(12)}",
    }
    env = {
        **os.environ,
        **planted,
        "RELAUNCH_HOME": str(home),
        "RELAUNCH_PIPELINES_DIR": str(write_spec(tmp_path / "pipelines", tmp_path / "repo", out)),
        "RELAUNCH_GITHUB_API_URL": f"http://127.0.0.1:{closed}",
        "RELAUNCH_JOB_SANDBOX": sandbox,
    }
    repo = make_repo(tmp_path / "repo")
    stack = StackProcess(env, home, tmp_path / "up.log").start()
    try:
        wandb_token = _stack_secret(home, "wandb_webhook_token")
        payload = push_payload(repo, full_name=REPO)
        reply = send_github(stack.urls["github_webhook"], "push", payload, planted["RELAUNCH_GITHUB_WEBHOOK_SECRET"])
        assert reply.status_code == 202, reply.text
        found = wait_for_file(out, stack)
        supervisor = stack.process.pid if stack.process else -1
        loose = loose_modes(home)
    finally:
        stack.stop()
    if sandbox == "off":
        ancestors: list[int] = found["ancestors"]  # type: ignore[assignment]
        files: dict[str, str] = found["files"]  # type: ignore[assignment]
        assert supervisor in ancestors, f"the walk never reached the supervisor: {ancestors}"
        assert any(path.endswith("relaunch.db") for path in files), "the walk never reached the home"
    else:
        assert_sees_nothing_of_the_stack(found, home.resolve(), tmp_path.resolve())
    leaks = {name: _where(found, value) for name, value in {**planted, "wandb_webhook_token": wandb_token}.items()}
    assert not {name: where for name, where in leaks.items() if where}, f"secrets the job found: {leaks}"
    assert not loose, f"state open to other users (mode): {loose}"


def assert_sees_nothing_of_the_stack(found: dict[str, object], home: Path, above: Path) -> None:
    """No process but the sandbox's own init, no file of the home but its own checkout; and the walk went up past it."""
    procs: dict[str, dict[str, str]] = found["procs"]  # type: ignore[assignment]
    others = {pid: seen["cmdline"][:200] for pid, seen in procs.items() if "sandbox_run.py" not in seen["cmdline"]}
    assert not others and set(procs) <= {"1"}, f"processes of the stack the job saw: {others or procs}"
    assert found["ancestors"] == [], f"ancestors the job saw: {found['ancestors']}"
    files: dict[str, str] = found["files"]  # type: ignore[assignment]
    own = Path(str(found["cwd"]))
    state = [path for path in files if Path(path).is_relative_to(home) and not Path(path).is_relative_to(own)]
    assert not state, f"state files the job saw: {state}"
    assert any(Path(path).parent == above for path in files), f"the walk never went above the home: {list(files)}"


def _stack_secret(home: Path, name: str) -> str:
    for path in (home / "secrets" / name, home / name):
        if path.exists():
            return path.read_text().strip()
    raise AssertionError(f"the stack made no {name}")


def _where(found: dict[str, object], value: str) -> list[str]:
    """Where in what the job found a value appears: 'env', 'proc <pid> environ', 'file <path>'."""
    places = ["env"] if value in json.dumps(found["env"]) else []
    for pid, seen in found["procs"].items():  # type: ignore[attr-defined]
        places += [f"proc {pid} {kind}" for kind, text in seen.items() if value in text]
    places += [f"file {path}" for path, text in found["files"].items() if value in text]  # type: ignore[attr-defined]
    return places


def loose_modes(home: Path) -> list[str]:
    """No file or folder of the state is open to other users (the checked-out sources and outputs included)."""
    loose = []
    for folder, _, files in os.walk(home):
        for name in [folder, *(os.path.join(folder, f) for f in files)]:
            mode = stat.S_IMODE(os.lstat(name).st_mode)
            if mode & 0o077:
                loose.append(f"{os.path.relpath(name, home)} {mode:o}")
    return loose
