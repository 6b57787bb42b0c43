"""Issue 13: the source comes from the spec, and every SHA and ref from a payload is checked before git sees it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from relaunch.config_files import load_spec
from relaunch.domain.spec import PipelineSpec, SourceSpec, SpecError
from relaunch.service.ingest import IngestService
from relaunch.service.plans import head_run
from relaunch.simulate import github_headers
from relaunch.triggers.errors import Unprocessable
from relaunch.triggers.github import PushEvent, parse_github
from tests.fakes import FakeBus, FakeStore

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "github"
SECRET = "s3cret"
JOB = {"command": ["python", "x.py"]}
ZERO = "0" * 40


def spec(repo: str = "Codertocat/Hello-World", **source: Any) -> PipelineSpec:
    source = {"branches": ["master"], **source}
    return PipelineSpec.model_validate(
        {"name": "hello", "source": SourceSpec(repo=repo, **source), "train": JOB, "evaluate": JOB, "endpoint": "e"}
    )


def sample(name: str) -> dict[str, Any]:
    return dict(json.loads((SAMPLES / name).read_text()))


def parse(payload: dict[str, Any], event: str) -> Any:
    body = json.dumps(payload).encode()
    return parse_github(github_headers(event, body, SECRET, "d-1"), body, secret=SECRET)


def deliver(payload: dict[str, Any], event: str, *specs: PipelineSpec) -> tuple[int, dict[str, Any], FakeStore]:
    store = FakeStore()
    service = IngestService(store, FakeBus(), lambda: {s.name: s for s in specs})
    body = json.dumps(payload).encode()
    headers = github_headers(event, body, SECRET, "d-1")
    reply = service.github(parse_github(headers, body, secret=SECRET), headers, body)
    return reply.status, reply.body, store


def push(**changes: Any) -> dict[str, Any]:
    payload = sample("push.2.json")
    repository = {**payload["repository"], **changes.pop("repository", {})}
    return {**payload, **changes, "repository": repository}


# --- the clone URL is the spec's, never the payload's ----------------------------------------------------------


@pytest.mark.parametrize("hostile", ["file:///tmp/evil", "https://github.com/attacker/evil.git", "--upload-pack=x"])
@pytest.mark.parametrize(
    ("source", "expected"),
    [({}, "https://github.com/Codertocat/Hello-World.git"), ({"clone_url": "file:///srv/hello"}, "file:///srv/hello")],
)
def test_a_push_clones_the_url_the_spec_gives_or_implies(hostile: str, source: dict, expected: str) -> None:
    status, body, store = deliver(push(repository={"clone_url": hostile}), "push", spec(**source))
    assert status == 202 and body["outcome"] == "accepted"
    assert [run.trigger.clone_url for run in store.runs.values()] == [expected]


def test_a_push_without_a_clone_url_in_its_payload_is_fine() -> None:
    payload = push()
    del payload["repository"]["clone_url"]
    assert isinstance(parse(payload, "push"), PushEvent)


# --- SHAs and refs of pushes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"after": "--orphan=pwned"}, "after"),
        ({"after": "HEAD"}, "after"),
        ({"after": "6113728F27AE82C7B1A177C8D03F9E96E0ADF246"}, "after"),  # git would take it; GitHub never sends it
        ({"before": "-c core.sshCommand=touch /tmp/pwned"}, "before"),
        ({"ref": "refs/heads/../../etc"}, "ref"),
        ({"ref": "refs/heads/--orphan=pwned"}, "ref"),
        ({"ref": "--upload-pack=touch /tmp/x"}, "ref"),
        ({"ref": "refs/heads/a\udc80b"}, "ref"),  # a lone surrogate: valid JSON, not text
    ],
)
def test_a_bad_sha_or_ref_in_a_push_is_a_422_naming_the_field(changes: dict, field: str) -> None:
    with pytest.raises(Unprocessable) as err:
        parse(push(**changes), "push")
    assert err.value.field == field and field in str(err.value)


def test_a_branch_deletion_has_a_zero_after_and_starts_no_run() -> None:
    status, body, store = deliver(push(after=ZERO, deleted=True, commits=[], head_commit=None), "push", spec())
    assert status == 202 and store.runs == {} and body["outcome"] != "accepted"


# --- dispatches --------------------------------------------------------------------------------------------------


def dispatch(**client_payload: Any) -> dict[str, Any]:
    repository = sample("workflow_dispatch.1.json")["repository"]
    return {"action": "retrain", "client_payload": client_payload, "repository": repository, "sender": {"login": "o"}}


@pytest.mark.parametrize(
    ("client_payload", "field"),
    [
        ({"ref": "--upload-pack=touch /tmp/x"}, "client_payload.ref"),
        ({"ref": "refs/heads/a..b"}, "client_payload.ref"),
        ({"ref": "main@{1}"}, "client_payload.ref"),
        ({"sha": "--orphan=pwned"}, "client_payload.sha"),
        ({"sha": "abc123"}, "client_payload.sha"),
    ],
)
def test_a_bad_repository_dispatch_ref_or_sha_is_a_422(client_payload: dict, field: str) -> None:
    octo = spec("octo-org/octo-repo", branches=["main"])
    with pytest.raises(Unprocessable) as err:
        deliver(dispatch(**client_payload), "repository_dispatch", octo)
    assert err.value.field == field


@pytest.mark.parametrize(("ref", "full"), [("main", "refs/heads/main"), ("refs/tags/v1.2", "refs/tags/v1.2")])
def test_a_repository_dispatch_ref_may_be_a_branch_name_or_a_full_ref(ref: str, full: str) -> None:
    octo = spec("octo-org/octo-repo", branches=["main"])
    status, _, store = deliver(dispatch(ref=ref), "repository_dispatch", octo)
    assert status == 202 and [r.trigger.ref for r in store.runs.values()] == [full]
    assert [r.trigger.clone_url for r in store.runs.values()] == ["https://github.com/octo-org/octo-repo.git"]


def test_a_dispatch_may_name_a_sha256_commit() -> None:
    octo = spec("octo-org/octo-repo", branches=["main"])
    status, _, store = deliver(dispatch(sha="ab" * 32), "repository_dispatch", octo)
    assert status == 202 and [r.trigger.sha for r in store.runs.values()] == ["ab" * 32]


def test_a_bad_workflow_dispatch_ref_is_a_422_naming_the_field() -> None:
    payload = {**sample("workflow_dispatch.1.json"), "ref": "refs/heads/-x", "inputs": {"pipeline": "hello"}}
    with pytest.raises(Unprocessable) as err:
        parse(payload, "workflow_dispatch")
    assert err.value.field == "ref"


# --- the spec's clone URL ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/a/b.git",
        "ssh://git@github.com/a/b.git",
        "ssh://git@example.com:2222/srv/b.git",
        "git@github.com:a/b.git",
        "file:///srv/repos/b",
    ],
)
def test_a_spec_may_clone_over_https_ssh_or_from_an_absolute_local_path(url: str) -> None:
    assert spec(clone_url=url).source.repo_clone_url() == url


@pytest.mark.parametrize(
    "url",
    [
        "ext::sh -c touch% /tmp/pwned",
        "fd::17",
        "-uattacker",
        "--upload-pack=touch /tmp/x",
        "http://github.com/a/b.git",  # cleartext: anyone on the path chooses the code
        "git://github.com/a/b.git",
        "https://user:hunter2@github.com/a/b.git",  # a secret in a spec file
        "https://ghp_token@github.com/a/b.git",
        "ssh://-oProxyCommand=touch%20x/b",
        "ssh://git:pw@github.com/a/b.git",
        "git@-oProxyCommand=x:a/b",
        "file://relative/path",
        "file:///srv/../etc",
        "/srv/repos/b",  # a bare path: say file:///srv/repos/b
        "https://github.com/a/b.git\n",
        "https://github.com/a b.git",
        "https://github.com/a/b.git#\udc80",
        "",
    ],
)
def test_a_spec_clone_url_that_is_not_https_ssh_or_file_is_refused_naming_the_file_and_field(
    tmp_path: Path, url: str
) -> None:
    text = "name: hello\nsource:\n  repo: a/b\n  clone_url: CLONE\ntrain: {command: [x]}\nevaluate: {command: [x]}\n"
    path = tmp_path / "hello.yaml"
    path.write_text(text.replace("CLONE", json.dumps(url)) + "endpoint: e\n", encoding="utf-8", errors="surrogatepass")
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(path) in str(err.value) and "source.clone_url" in str(err.value)


@pytest.mark.parametrize("repo", ["a/b c", "-a/b", "a/..", "a/b/c", "a/b?x", "a/b.git#x"])
def test_a_spec_repo_that_cannot_name_a_github_repository_is_refused(repo: str) -> None:
    with pytest.raises(ValueError, match="source.repo|repo"):
        spec(repo)


def test_a_run_of_a_branch_head_clones_the_spec_and_checks_the_ref() -> None:
    run = head_run(spec(branches=["main"]), "k", "schedule")
    assert not isinstance(run, str) and run.trigger.clone_url == "https://github.com/Codertocat/Hello-World.git"
    assert head_run(spec(branches=["-x"]), "k", "schedule") == "ref 'refs/heads/-x' " + (
        "has a part starting with '.' or '-', or ending with '.lock'"
    )
