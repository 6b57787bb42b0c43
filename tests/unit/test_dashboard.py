"""The dashboard's read model, gate charts and HTML: filters refuse unknown values, hostile text stays inert."""

from __future__ import annotations

import pytest

from relaunch.dashboard import html, html_ops, svg
from relaunch.dashboard.gate_report import gate_report, parse_confusion
from relaunch.dashboard.live import stream
from relaunch.dashboard.readmodel import BadField, Place, links, run_filter
from relaunch.domain.gate import decide
from relaunch.domain.model import Delivery, PipelineRun, RunState, Scores, TimelineEntry, Trigger
from relaunch.domain.spec import GatePolicy

HOSTILE = "<script>alert(1)</script>"


def run(state: RunState = RunState.TRAINING, **trigger: object) -> PipelineRun:
    base = {"kind": "push", "delivery_key": "d1", "repo": "acme/digits", "ref": "refs/heads/main", "sha": "a" * 40}
    made = Trigger.model_validate({**base, **trigger})
    return PipelineRun(id="digits-1", pipeline="digits", trigger=made, state=state)


def test_a_filter_names_known_values_only_and_refuses_others_naming_the_field() -> None:
    chosen = run_filter({"pipeline": "digits", "state": "training", "branch": "main"}, ["digits"])
    assert chosen.matches(run()) and not chosen.matches(run(ref="refs/heads/other"))
    for field, value in (("pipeline", "nope"), ("trigger", "push2"), ("state", HOSTILE), ("branch", "a\x1bb")):
        with pytest.raises(BadField) as refused:
            run_filter({field: value}, ["digits"])
        assert refused.value.field == field and "<script>" not in refused.value.message.replace(HOSTILE, "")


def test_a_branch_named_like_a_script_and_invalid_unicode_reach_the_page_escaped() -> None:
    evil = run(ref=f"refs/heads/{HOSTILE}", actor="\ud800\u202eevil")
    timeline = [TimelineEntry(kind="log", message=HOSTILE, data={"tail": f"line\n{HOSTILE}\x1b[2J"})]
    page = html.run_page(evil, timeline, html.RunView(), html.Viewer())
    assert HOSTILE not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "\ud800" not in page and "\u202e" not in page and "\\ud800" in page
    page.encode("utf-8")  # a lone surrogate would make this raise
    rows = str(html.run_rows([evil]))
    assert 'data-run-id="digits-1" data-state="training"' in rows and HOSTILE not in rows


def test_links_are_built_from_checked_parts_only() -> None:
    good = links(
        run(pr_number=7),
        [TimelineEntry(kind="info", message="", data={"wandb_run_url": "https://wandb.ai/e/p/runs/x"})],
    )
    assert [link.url for link in good] == [
        f"https://github.com/acme/digits/commit/{'a' * 40}",
        "https://github.com/acme/digits/pull/7",
        "https://wandb.ai/e/p/runs/x",
    ]
    bad = run(repo='acme/digits" onclick=x', sha="javascript:alert(1)")
    assert links(bad, [TimelineEntry(kind="i", message="", data={"wandb_run_url": "javascript:alert(1)"})]) == []
    vertex = run().model_copy(update={"jobs": {"train": "projects/p1/locations/us-central1/customJobs/42"}})
    assert links(vertex)[-1].url.endswith("/training/42?project=p1")


def scores(metrics: dict[str, float], outcomes: list[int]) -> Scores:
    return Scores(metrics=metrics, outcomes=outcomes)


def test_the_gate_report_carries_the_gates_own_interval_and_guardrails() -> None:
    policy = GatePolicy(floors={"accuracy": 0.5}, max_regression={"accuracy": 0.02})
    cand, champ = [1] * 90 + [0] * 10, [1] * 80 + [0] * 20
    decision = decide(scores({"accuracy": 0.9}, cand), scores({"accuracy": 0.8}, champ), policy, "v1")
    report = gate_report(decision, policy, {"candidate": cand, "champion": champ})
    accuracy = report.deltas[0]
    assert accuracy.delta == pytest.approx(0.1) and accuracy.low is not None and accuracy.high is not None
    assert accuracy.low < 0.1 < accuracy.high and accuracy.limit == -0.02
    detail = next(c.detail for c in decision.checks if c.name == "paired")
    assert f"[{accuracy.low:.4f}, {accuracy.high:.4f}]" in detail  # the same interval the gate wrote
    assert report.paired is not None and (report.paired.fixed, report.paired.broken) == (10, 0)
    assert report.guardrails[0].passed and report.guardrails[0].threshold == 0.5
    charts = str(svg.delta_chart(report)) + str(svg.guardrail_chart(report)) + str(svg.paired_chart(report.paired))
    assert charts.count("<svg") == 3 and "+0.1000" in charts


def test_a_hostile_confusion_matrix_is_refused_or_drawn_escaped() -> None:
    assert parse_confusion({"labels": ["a"], "matrix": [[-1]]}) is None
    assert parse_confusion({"labels": ["a", "b"], "matrix": [[1, 2]]}) is None
    assert parse_confusion({"labels": [HOSTILE], "matrix": [[True]]}) is None
    confusion = parse_confusion({"labels": [HOSTILE, "b"], "matrix": [[3, 1], [0, 4]]})
    assert confusion is not None
    drawn = str(svg.confusion_chart(confusion))
    assert HOSTILE not in drawn and "&lt;script&gt;" in drawn


def test_the_pipelines_page_gives_each_split_and_rollback_button_a_stable_id() -> None:
    place = Place("digits", "production", "digits-prod", {"v2": 90, "v3": 10}, None, "")
    page = html_ops.pipelines_page([place], {}, html.Viewer(can_act=True, csrf="c"))
    assert '<td id="traffic-digits-prod">v2 90% · v3 10%</td>' in page
    assert 'id="rollback-digits-production"' in page and 'name="csrf" value="c"' in page
    assert "rollback-" not in html_ops.pipelines_page([place], {}, html.Viewer())  # no token: no button


def test_the_inbox_escapes_delivery_keys() -> None:
    page = html_ops.inbox_page([Delivery(key=HOSTILE, source="github")], [], html.Viewer(can_act=True, csrf="c"))
    assert HOSTILE not in page and 'id="replay-0"' in page


def test_a_stream_sends_the_section_at_once_then_only_when_it_changed_and_ends() -> None:
    values = iter(["a", "a", "b", "b"])
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    events = list(stream(lambda: next(values), poll_s=1.0, duration_s=3.0, clock=lambda: now[0], sleep=sleep))
    updates = [e for e in events if e.startswith("event: update")]
    assert events[0] == "retry: 1000\n\n" and updates == [
        'event: update\ndata: {"html": "a"}\n\n',
        'event: update\ndata: {"html": "b"}\n\n',
    ]
