"""The pull request report: one comment's markdown, with a metric table, a Mermaid chart and a hidden marker."""

from __future__ import annotations

import re
from typing import Any

from relaunch.domain.gate import decide
from relaunch.domain.model import Decision, Notification, Scores
from relaunch.domain.pr_report import COMMENT_LIMIT, comment_body, is_report, key_deltas, marker
from relaunch.domain.spec import GatePolicy

SHA = "9f3c1d2e4b5a69788796a5b4c3d2e1f001234567"


def decision(candidate: dict[str, float], champion: dict[str, float] | None, **policy: Any) -> Decision:
    """A real gate decision; the outcomes give the paired test (and its interval) 3 fixed and 1 broken of 100."""
    ours = [1] * 90 + [1, 1, 1, 0] + [0] * 6
    theirs = [1] * 90 + [0, 0, 0, 1] + [0] * 6
    held = Scores(metrics=champion, outcomes=theirs) if champion is not None else None
    return decide(Scores(metrics=candidate, outcomes=ours), held, GatePolicy(**policy), "v3" if champion else None)


def note(made: Decision | None, **fields: Any) -> Notification:
    values: dict[str, Any] = {"run_id": "run-42", "pipeline": "digits", "repo": "relaunch-demo/digits", "sha": SHA}
    values.update(stage="gate", state="success", description="Gate passed", evaluate_only=True, pr_number=12)
    values.update(trigger_kind="pull_request", decision=made)
    return Notification(**{**values, **fields})


def mermaid(body: str) -> list[str]:
    found = re.findall(r"```mermaid\n(.*?)\n```", body, re.DOTALL)
    assert len(found) == 1, body
    return str(found[0]).splitlines()


def test_a_verdict_on_a_pull_request_is_a_comment_with_the_table_the_chart_and_the_marker() -> None:
    made = decision(
        {"accuracy": 0.93, "log_loss": 0.21}, {"accuracy": 0.91, "log_loss": 0.25}, ceilings={"log_loss": 1}
    )
    body = comment_body(note(made), "https://relaunch.example/runs/run-42")

    assert body is not None and body.startswith(marker("digits") + "\n")
    assert "✅" in body and "gate passed" in body and "`9f3c1d2`" in body and "`v3`" in body
    assert "[run run-42](https://relaunch.example/runs/run-42)" in body
    assert "| metric | champion | candidate | delta | interval |" in body
    paired = next(c for c in made.checks if c.name == "paired")
    assert paired.interval is not None
    lo, hi = paired.interval
    assert f"| `accuracy` | 0.9100 | 0.9300 | +0.0200 | [{lo:+.4f}, {hi:+.4f}] |" in body
    assert "| `log_loss` | 0.2500 | 0.2100 | -0.0400 | — |" in body  # no per-example test for log loss
    chart = mermaid(body)
    assert chart[0] == "xychart-beta"
    assert 'x-axis ["accuracy", "log_loss"]' in [line.strip() for line in chart]
    assert "bar [0.02, -0.04]" in [line.strip() for line in chart]
    assert "updated in place on every push" in body


def test_a_first_model_shows_the_candidate_alone() -> None:
    body = comment_body(note(decision({"accuracy": 0.9}, None)), None)
    assert body is not None
    assert "| `accuracy` | — | 0.9000 | — | — |" in body and "first model" in body
    assert "bar [0.9]" in [line.strip() for line in mermaid(body)]
    assert "](" not in body  # no public URL: no link to a run page


def test_only_a_pull_request_verdict_with_a_decision_makes_a_comment() -> None:
    made = decision({"accuracy": 0.93}, {"accuracy": 0.91})
    assert comment_body(note(made), None) is not None
    assert comment_body(note(made, pr_number=None), None) is None  # a push
    assert comment_body(note(made, pr_number=0), None) is None and comment_body(note(made, pr_number=-3), None) is None
    assert comment_body(note(made, state="pending"), None) is None  # still evaluating
    assert comment_body(note(made, stage="deploy"), None) is None
    assert comment_body(note(None), None) is None
    assert comment_body(note(made, pipeline="Not a pipeline -->"), None) is None  # the marker could not hold it


def test_hostile_metric_names_stay_inside_their_cell_and_their_chart() -> None:
    evil = 'acc"uracy\n```\n<!-- relaunch:report pipeline=digits -->|@admins ]`'
    body = comment_body(note(decision({evil: 0.9}, {evil: 0.8})), None)
    assert body is not None
    lines = body.splitlines()
    assert lines.count(marker("digits")) == 1 and lines[0] == marker("digits")  # only the real marker is a line
    assert not [line for line in lines[1:] if line.lstrip().startswith("<!--")]  # no other HTML comment starts
    assert "@admins" not in body  # no mention is triggered
    chart = mermaid(body)  # exactly one fence pair: the name did not close it
    axis = next(line for line in chart if "x-axis" in line)
    assert axis.count('"') == 2 and "\n" not in axis
    row = next(line for line in body.splitlines() if line.startswith("| `acc"))
    assert row.count(" | ") == 4 and row.endswith("| — |")  # five cells: the name's pipe is escaped


def test_a_huge_report_fits_githubs_comment_limit_and_keeps_its_marker() -> None:
    many = {f"metric_{i:04d}_" + "x" * 300: i / 3000 for i in range(3000)}
    body = comment_body(note(decision(many, dict(many), floors=dict.fromkeys(many, 0.0))), None)
    assert body is not None and len(body) <= COMMENT_LIMIT
    assert body.startswith(marker("digits")) and len(mermaid(body)) > 2


def test_is_report_needs_the_marker_of_this_pipeline_on_the_first_line() -> None:
    assert is_report(marker("digits") + "\n## report", "digits")
    assert not is_report(marker("fraud") + "\n## report", "digits")
    assert not is_report("quoting it:\n" + marker("digits"), "digits")
    assert not is_report(None, "digits")


def test_key_deltas_name_the_gated_metrics_first() -> None:
    made = decision(
        {"accuracy": 0.93, "aaa": 1.0, "log_loss": 0.2},
        {"accuracy": 0.91, "aaa": 1.0, "log_loss": 0.3},
        floors={"accuracy": 0.5},
    )
    assert key_deltas(made) == ["accuracy 0.9300 (+0.0200)", "aaa 1.0000 (+0.0000)", "log_loss 0.2000 (-0.1000)"]
    assert key_deltas(decision({"accuracy": 0.9}, None)) == ["accuracy 0.9000"]


def test_chart_numbers_are_plain_decimals_mermaid_can_read() -> None:
    body = comment_body(note(decision({"tiny": 0.00001, "big": 12345.5}, None)), None)
    assert body is not None
    bars = next(line.strip() for line in mermaid(body) if line.strip().startswith("bar"))
    assert bars == "bar [12345.5, 0.00001]" and "e-" not in "".join(mermaid(body))


def test_checks_whose_escaped_details_would_overflow_fold_into_a_pointer_to_the_check_run() -> None:
    many = {f"{i:03d}" + "<" * 600: 0.5 for i in range(60)}  # each "<" grows to "&lt;" in a detail
    body = comment_body(note(decision(many, dict(many), floors=dict.fromkeys(many, 0.0))), None)
    assert body is not None and len(body) <= COMMENT_LIMIT
    assert "gate checks: see the check run `relaunch/gate`" in body and "<details>" not in body
