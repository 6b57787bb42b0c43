"""train-image.yaml's clone step run for real against a private repository: a git smart-HTTP server that wants a
GitHub App installation token, and the local api.github.com that mints one for a JWT signed with the app's key.

git reaches the loopback server through a `url.<base>.insteadOf` rule in the step's $HOME, so the clone URL stays the
https://github.com/... URL the build is given (the check step refuses anything but https and ssh).
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.git_http_server import GitServer
from tests.git_http_server import serve as serve_git
from tests.github_server import FakeApp, FakeGitHub, serve
from tests.integration.github.openapi import assert_conforms
from tests.integration.github.test_github_app_auth import PRIVATE, PUBLIC, rsa_pair
from tests.unit.test_cloudbuild_files import git, run_step

APP_ID, INSTALLATION = "987654", 31337
CLONE_URL = "https://github.com/relaunch-demo/digits.git"
TOKENS = f"/app/installations/{INSTALLATION}/access_tokens"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with serve("no-static-token", FakeApp(APP_ID, PUBLIC, INSTALLATION)) as fake:
        yield fake
        assert_conforms(fake.requests)


def basic(token: str) -> str:
    return "Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """relaunch-demo/digits.git, bare, with two commits on main."""
    work, bare = tmp_path / "work", tmp_path / "repos" / "relaunch-demo" / "digits.git"
    work.mkdir()
    git(work, "init", "--quiet")
    for name in ("first", "second"):
        (work / "Dockerfile").write_text(f"FROM scratch\n# {name}\n")
        git(work, "add", "Dockerfile")
        git(work, "commit", "--quiet", "-m", name)
    bare.parent.mkdir(parents=True)
    subprocess.run(["git", "clone", "--quiet", "--bare", "--", str(work), str(bare)], check=True, timeout=30)
    return bare


@pytest.fixture
def private(origin: Path, github: FakeGitHub) -> Iterator[GitServer]:
    """The repository, served only to a request carrying a token the fake GitHub minted (as GitHub's git does)."""
    with serve_git(origin.parents[1], lambda header: header in {basic(t) for t in github.issued}) as server:
        yield server


def clone(workspace: Path, git_url: str, api_url: str, key: str | None, **values: str) -> dict[str, Any]:
    """Run clone then checkout as the build does, with the app's key as the secret env when given."""
    workspace.mkdir()
    (workspace / ".gitconfig").write_text(f'[url "{git_url}/"]\n\tinsteadOf = https://github.com/\n')
    output = workspace.parent / "builder-output"
    output.mkdir()
    values = {"_CLONE_URL": CLONE_URL, "_SHA": "", "_REF": "", "_PR": "", **values}
    values |= {"_GITHUB_APP_ID": APP_ID, "_GITHUB_APP_INSTALLATION_ID": str(INSTALLATION), "_GITHUB_API_URL": api_url}
    secret = {"GITHUB_APP_PRIVATE_KEY": key} if key else {}
    cloned = run_step("clone", values, workspace, GIT_TERMINAL_PROMPT="0", **secret)
    checked = run_step("checkout", values, workspace, BUILDER_OUTPUT=str(output)) if cloned.returncode == 0 else None
    return {"clone": cloned, "checkout": checked, "output": output}


def everything_in(folder: Path) -> str:
    return "\n".join(p.read_bytes().decode("latin-1") for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("target", ["sha", "ref"])
def test_a_private_repository_is_cloned_with_a_read_only_installation_token_that_stays_nowhere(
    github: FakeGitHub, private: GitServer, origin: Path, tmp_path: Path, target: str
) -> None:
    head = git(origin, "rev-parse", "main")
    values = {"_SHA": head} if target == "sha" else {"_REF": "main"}
    done = clone(tmp_path / "workspace", private.url, github.url, PRIVATE, **values)

    assert done["clone"].returncode == 0, done["clone"].stderr
    assert done["checkout"].returncode == 0, done["checkout"].stderr
    assert (done["output"] / "output").read_text() == head
    # One token, minted for this repository only, read-only, with a JWT the fake verified against the app's key.
    assert github.calls() == [("POST", TOKENS)]
    assert github.requests[0].body == {"repositories": ["digits"], "permissions": {"contents": "read"}}
    (token,) = github.issued
    assert private.authorizations and set(private.authorizations) == {basic(token)}
    # Never printed, never left in the clone's config or anywhere in the workspace the image is built from.
    shown = done["clone"].stdout + done["clone"].stderr + done["checkout"].stdout + done["checkout"].stderr
    for secret in (token, basic(token).split()[1], PRIVATE.splitlines()[1]):
        assert secret not in shown and secret not in everything_in(tmp_path / "workspace")


def test_a_public_repository_is_still_cloned_anonymously(github: FakeGitHub, origin: Path, tmp_path: Path) -> None:
    with serve_git(origin.parents[1]) as public:
        done = clone(tmp_path / "workspace", public.url, github.url, None, _REF="main")

    assert done["checkout"] is not None and done["checkout"].returncode == 0, done["clone"].stderr
    assert github.calls() == [] and set(public.authorizations) == {""}


def test_a_refused_token_stops_the_clone_with_githubs_answer_and_no_secret(
    github: FakeGitHub, private: GitServer, tmp_path: Path
) -> None:
    other, _ = rsa_pair()  # not the app's key: GitHub refuses the JWT
    done = clone(tmp_path / "workspace", private.url, github.url, other, _REF="main")

    assert done["clone"].returncode != 0 and done["checkout"] is None
    assert "HTTP 401" in done["clone"].stderr and "could not be decoded" in done["clone"].stderr
    assert other.splitlines()[1] not in done["clone"].stdout + done["clone"].stderr
    assert private.authorizations == []  # git never asked


def test_an_ssh_clone_url_with_an_app_key_is_refused_naming_https(github: FakeGitHub, tmp_path: Path) -> None:
    done = clone(tmp_path / "workspace", "http://127.0.0.1:9", github.url, PRIVATE, _CLONE_URL="git@github.com:o/r.git")
    assert done["clone"].returncode == 1 and "https://" in done["clone"].stderr and github.calls() == []
