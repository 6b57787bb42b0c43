"""The lineage walk: from what an environment serves back to the commit, the data and the run; from a commit forward
to every model it produced and where each is served. Values in, values out."""

from __future__ import annotations

import pytest

from relaunch.domain.environments import PromotionKind, PromotionRecord
from relaunch.domain.lineage import Origin, back, forward, serving_now
from relaunch.domain.model import PipelineRun, RunState, Trigger

A, B = "a" * 40, "b1" + "0" * 38


def _run(run_id: str, sha: str | None, version: str | None, state: RunState = RunState.PROMOTED) -> PipelineRun:
    trigger = Trigger(kind="push", delivery_key=run_id, repo="o/digits", sha=sha, ref="refs/heads/main")
    return PipelineRun(id=run_id, pipeline="digits", trigger=trigger, state=state, model_version=version)


def _record(
    env: str, version: str, run_id: str, sha: str, at: float, kind: PromotionKind = "promoted"
) -> PromotionRecord:
    return PromotionRecord(
        pipeline="digits",
        environment=env,
        kind=kind,
        version=version,
        run_id=run_id,
        sha=sha,
        at=at,
    )


RUNS = [_run("r1", A, "v1"), _run("r2", B, "v2"), _run("r3", B, None, RunState.REJECTED), _run("r4", A, "v3")]
# newest first, as PromotionHistory.promotions returns them: v1 to staging then production, v2 to production, which
# was rolled back to v1; v3 (a retrain of commit A) in staging.
RECORDS = [
    _record("staging", "v3", "r4", A, 50),
    _record("production", "v1", "r2", B, 40, kind="rolled_back"),
    _record("production", "v2", "r2", B, 30),
    _record("production", "v1", "r1", A, 20),
    _record("staging", "v1", "r1", A, 10),
]
DATA = {"r1": "sklearn-digits:1111", "r4": "sklearn-digits:2222"}


def test_what_each_environment_serves_is_its_newest_record() -> None:
    assert serving_now(RECORDS) == {"staging": "v3", "production": "v1"}


def test_a_rolled_back_environment_walks_back_to_the_run_that_made_the_version_put_back() -> None:
    origin = back("digits", "production", RUNS, RECORDS, DATA)
    assert origin == Origin(
        pipeline="digits",
        version="v1",
        run_id="r1",  # not r2, whose rollback put v1 back
        state="promoted",
        commit=A,
        ref="refs/heads/main",
        repo="o/digits",
        trigger="push",
        data_version="sklearn-digits:1111",
        artifact=None,
        served_in=("production",),
    )


def test_a_version_walks_back_too_and_an_unserved_one_says_so() -> None:
    assert back("digits", "v2", RUNS, RECORDS, DATA).served_in == ()
    assert back("digits", "v3", RUNS, RECORDS, DATA).data_version == "sklearn-digits:2222"


def test_a_commit_walks_forward_to_every_model_it_produced_and_where_each_is_served() -> None:
    found = forward(A[:7], RUNS, RECORDS, DATA)
    assert [(o.run_id, o.version, o.served_in) for o in found] == [
        ("r1", "v1", ("production",)),
        ("r4", "v3", ("staging",)),
    ]


def test_a_commit_whose_runs_made_no_model_lists_them_with_their_state() -> None:
    found = forward(B, RUNS, RECORDS, DATA)
    assert [(o.run_id, o.version, o.state) for o in found] == [("r2", "v2", "promoted"), ("r3", None, "rejected")]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("canary", "no environment or version 'canary' of digits"),
        ("v9", "no environment or version 'v9' of digits"),
        ("x" * 500, "no environment or version 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
    ],
)
def test_an_unknown_target_is_one_line_naming_it(target: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        back("digits", target, RUNS, RECORDS, DATA)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 200


def test_a_version_whose_run_is_gone_is_said_plainly() -> None:
    with pytest.raises(ValueError, match="v1 of digits was made by run r1, which the store no longer has"):
        back("digits", "v1", RUNS[1:], RECORDS, DATA)


@pytest.mark.parametrize("commit", ["", "abc", "g" * 40, "a" * 41, "A" * 40, "a\nb" * 4, "b1"])
def test_a_commit_must_be_seven_to_forty_hex_digits(commit: str) -> None:
    with pytest.raises(ValueError, match="commit must be 7 to 40 lower-case hex digits"):
        forward(commit, RUNS, RECORDS, DATA)


def test_a_prefix_of_two_commits_is_ambiguous_and_one_of_none_finds_nothing() -> None:
    twins = [_run("t1", "c" * 40, "v7"), _run("t2", "c" * 39 + "d", "v8")]
    with pytest.raises(ValueError, match="commit cccccccc is ambiguous: it begins 2 commits"):
        forward("c" * 8, twins, [], {})
    assert forward("d" * 7, RUNS, RECORDS, DATA) == []
