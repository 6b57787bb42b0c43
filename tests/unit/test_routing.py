"""Which pipelines a push concerns."""

from __future__ import annotations

from relaunch.pipelines.routing import PushFacts, route_push, run_id_for
from relaunch.pipelines.spec import JobSpec, PipelineSpec, SourceSpec

JOB = JobSpec(command=["python", "x.py"])


def spec(name: str, repo: str = "acme/m", **source: object) -> PipelineSpec:
    return PipelineSpec(name=name, source=SourceSpec(repo=repo, **source), train=JOB, evaluate=JOB, endpoint=name)  # type: ignore[arg-type]


def push(branch: str | None = "main", paths: set[str] | None = None, **kw: object) -> PushFacts:
    base = {
        "repo": "acme/m",
        "branch": branch,
        "tag": None if branch else "v1",
        "deleted": False,
        "changed_paths": frozenset(paths) if paths is not None else None,
    }
    return PushFacts(**{**base, **kw})  # type: ignore[arg-type]


def test_matches_repo_branch_and_paths() -> None:
    r = route_push(
        [spec("a", paths=["src/**"]), spec("b", paths=["docs/**"]), spec("c", repo="acme/other")],
        push(paths={"src/train.py"}),
    )
    assert [s.name for s in r.matched] == ["a"]
    assert r.skipped == {"b": "no watched path changed (docs/**)"}


def test_truncated_commit_lists_count_as_changed() -> None:
    assert [s.name for s in route_push([spec("a", paths=["src/**"])], push(paths=None)).matched] == ["a"]


def test_other_branches_tags_and_deletions_are_skipped_with_reasons() -> None:
    specs = [spec("a")]
    assert "not in ['main']" in route_push(specs, push("dev")).skipped["a"]
    assert "tags are not watched" in route_push(specs, push(None)).skipped["a"]
    assert route_push(specs, push(deleted=True)).skipped["a"] == "ref deleted"


def test_repo_names_compare_case_insensitively() -> None:
    assert route_push([spec("a", repo="Acme/M")], push()).matched


def test_run_ids_are_stable_per_delivery_and_pipeline() -> None:
    assert run_id_for("a", "github:1") == run_id_for("a", "github:1") != run_id_for("a", "github:2")
    assert run_id_for("a", "k").startswith("a-")
