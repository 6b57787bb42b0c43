"""Which pipelines a push concerns."""

from __future__ import annotations

from relaunch.domain.routing import (
    PushFacts,
    Routing,
    WandbFacts,
    route_drift,
    route_pull_request,
    route_push,
    route_wandb,
    run_id_for,
)
from relaunch.domain.spec import EvaluateSpec, JobSpec, PipelineSpec, SourceSpec, WandbSource

JOB = JobSpec(command=["python", "x.py"])
EVAL = EvaluateSpec(command=["python", "x.py"])


def spec(name: str, repo: str = "acme/m", **source: object) -> PipelineSpec:
    return PipelineSpec(name=name, source=SourceSpec(repo=repo, **source), train=JOB, evaluate=EVAL, endpoint=name)  # type: ignore[arg-type]


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


def test_tags_match_only_the_specs_tag_patterns() -> None:
    specs = [spec("a", tags=["v*"]), spec("b")]
    routing = route_push(specs, push(None, tag="v1.2"))
    assert [s.name for s in routing.matched] == ["a"] and "tags are not watched" in routing.skipped["b"]
    assert "not in ['v*']" in route_push([spec("a", tags=["v*"])], push(None, tag="nightly")).skipped["a"]


def test_only_path_skips_are_reported_as_unchanged() -> None:
    routing = route_push([spec("a", paths=["src/**"]), spec("b", branches=["dev"])], push(paths={"README.md"}))
    assert routing.unchanged == ["a"] and set(routing.skipped) == {"a", "b"}


def test_pull_requests_route_by_base_branch() -> None:
    routing = route_pull_request([spec("a"), spec("b", branches=["dev"])], "ACME/m", "main")
    assert [s.name for s in routing.matched] == ["a"] and "base branch main" in routing.skipped["b"]


def test_wandb_events_route_by_collection_kind_and_alias() -> None:
    source = WandbSource(entity="e", project="p", collection="c", events=["alias_added"])
    specs = [spec("a", wandb=source), spec("b")]
    facts = WandbFacts(kind="alias_added", entity="e", project="p", collection="c", alias="candidate")
    assert [s.name for s in route_wandb(specs, facts, "production").matched] == ["a"]
    new = WandbFacts(kind="new_version", entity="e", project="p", collection="c", alias=None)
    assert "not watched" in route_wandb(specs, new, "production").skipped["a"]
    elsewhere = WandbFacts(kind="alias_added", entity="e", project="other", collection="c", alias="candidate")
    assert route_wandb(specs, elsewhere, "production") == Routing()


def test_drift_routes_by_pipeline_name_or_endpoint() -> None:
    specs = [spec("a"), spec("b")]
    assert [s.name for s in route_drift(specs, "a", None)] == ["a"]
    assert [s.name for s in route_drift(specs, None, "b")] == ["b"]
    assert route_drift(specs, None, None) == []
