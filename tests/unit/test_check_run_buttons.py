"""The gate check run's buttons: GitHub's `check_run` `requested_action` delivery, parsed as hostile, routed to the
orchestrator, acted on only when GitHub says the presser may write, and buttons that follow the run."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from relaunch.domain.commands import CheckRunAction, StartRun, parse_command
from relaunch.domain.effects import Effect
from relaunch.domain.model import Delivery, PipelineRun, RunState, Trigger
from relaunch.domain.reporting import check_run_actions, check_run_entry, noted_output
from relaunch.service.ingest import IngestService
from relaunch.simulate import github_headers
from relaunch.triggers.errors import Unprocessable
from relaunch.triggers.github import parse_github
from relaunch.triggers.github_check_run import CheckRunActionEvent, OtherCheckRunEvent
from tests.fakes import FakeBus
from tests.unit.test_fork_pull_requests import FakePermissions
from tests.unit.test_promotion_approval import BAD, GOOD
from tests.unit.test_promotion_approval import World as Gated

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "github" / "check_run.requested_action.1.json"
SECRET = "s3cret"
REPO = "relaunch-demo/digits"
S = RunState


def pressed(run_id: str, identifier: str, login: str, *, sha: str, check_run_id: int = 7) -> dict[str, Any]:
    """GitHub's own `check_run.requested_action` sample, made a press on relaunch's gate check run of `run_id`."""
    payload = copy.deepcopy(json.loads(SAMPLE.read_text()))
    check = payload["check_run"]
    check.update(id=check_run_id, name="relaunch/gate", external_id=run_id, head_sha=sha)
    payload["requested_action"] = {"identifier": identifier}
    payload["sender"] = {**payload["sender"], "login": login}
    payload["repository"]["full_name"] = REPO
    return payload


def parse(payload: dict[str, Any], delivery: str = "d-1") -> Any:
    body = json.dumps(payload).encode()
    return parse_github(github_headers("check_run", body, SECRET, delivery), body, secret=SECRET)


class FakeCheckRuns:
    """GitHub's check runs as the orchestrator sees them: each update kept (note, buttons or None)."""

    def __init__(self, accept: bool = True) -> None:
        self.accept = accept
        self.updates: list[tuple[str, int, str, list[dict[str, str]] | None]] = []

    def update(self, repo: str, check_run_id: int, note: str, buttons: list[dict[str, str]] | None) -> bool:
        self.updates.append((repo, check_run_id, note, buttons))
        return self.accept

    def buttons(self) -> list[list[str] | None]:
        return [None if b is None else [x["identifier"] for x in b] for *_, b in self.updates]


class World(Gated):
    def __init__(self, people: dict[str, str] | None = None) -> None:
        super().__init__()
        self.permissions = FakePermissions(people or {})
        self.check_runs = FakeCheckRuns()
        self.orch.buttons.permissions = self.permissions
        self.orch.buttons.updates = self.check_runs
        self.bus = FakeBus()
        self.ingest = IngestService(self.store, self.bus, lambda: {"digits": self.spec})

    def run_to_gate(self, n: int, metrics: dict[str, float] = GOOD, **trigger: Any) -> PipelineRun:
        """As the gated world's, with run ids shaped as relaunch makes them (a check run names no other)."""
        fields = {"kind": "push", "repo": REPO, "sha": f"{n:040d}", "ref": "refs/heads/main", "delivery_key": f"d{n}"}
        run = PipelineRun(
            id=f"digits-{n:010x}", pipeline="digits", trigger=Trigger.model_validate(fields), created_at=float(n)
        )
        self.store.record_delivery(Delivery(key=f"d{n}", source="github"), [run])
        self.orch.handle(StartRun(run_id=run.id))
        self.finish(run.id, "train")
        self.blobs.write_eval(f"/art/runs/{run.id}/evaluation", metrics, None, None)
        return self.finish(run.id, "evaluate")

    def gated(self, n: int = 1, metrics: dict[str, float] = GOOD) -> PipelineRun:
        """A run at its gate, with the gate check run the GitHub notifier would have recorded (id 7)."""
        run = self.run_to_gate(n, metrics)
        self.store.append_timeline(run.id, check_run_entry(7))
        return self.orch.advance(self.store.runs[run.id])

    def press(self, run: PipelineRun, identifier: str, login: str, delivery: str = "d-1") -> dict[str, Any]:
        payload = pressed(run.id, identifier, login, sha=run.trigger.sha or "")
        body = json.dumps(payload).encode()
        headers = github_headers("check_run", body, SECRET, delivery)
        reply = self.ingest.github(parse_github(headers, body, secret=SECRET), headers, body)
        while self.bus.messages:
            _, data, _ = self.bus.messages.pop(0)
            self.orch.handle(parse_command(data))
        return dict(reply.body)


# -- parsing: GitHub's own sample, and hostile fields ------------------------------------------------------------


def test_the_sample_as_github_published_it_is_another_apps_check_run_and_is_ignored() -> None:
    event = parse(json.loads(SAMPLE.read_text()))
    assert isinstance(event, OtherCheckRunEvent) and "'API Review' is not relaunch's gate check run" in event.reason


def test_a_press_on_relaunchs_gate_check_run_is_read_with_every_field_checked() -> None:
    event = parse(pressed("digits-0123456789", "rollback", "octo-cat", sha="a" * 40))
    assert event == CheckRunActionEvent(
        delivery_id="d-1",
        repo=REPO,
        check_run_id=7,
        head_sha="a" * 40,
        run_id="digits-0123456789",
        identifier="rollback",
        sender="octo-cat",
        app_id=25811,
    )


@pytest.mark.parametrize(
    ("change", "ignored"),
    [
        ({"action": "completed"}, "check_run action 'completed' is not acted on"),
        ({"check_run.name": "relaunch/deploy"}, "is not relaunch's gate check run"),
        ({"check_run.external_id": "../../etc/passwd"}, "is not relaunch's gate check run"),
        ({"check_run.external_id": "Digits-0123456789"}, "is not relaunch's gate check run"),
        ({"check_run.external_id": None}, "is not relaunch's gate check run"),
    ],
)
def test_other_check_runs_and_actions_are_ignored(change: dict[str, Any], ignored: str) -> None:
    event = parse(_changed(pressed("digits-0123456789", "promote", "alice", sha="a" * 40), change))
    assert isinstance(event, OtherCheckRunEvent) and ignored in event.reason


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"requested_action.identifier": "lgtm|26764"}, "requested_action"),  # the sample's own button
        ({"requested_action.identifier": "Promote"}, "requested_action"),
        ({"requested_action": None}, "requested_action.identifier"),
        ({"sender.login": "alice; rm -rf /"}, "sender.login"),
        ({"sender.login": "-alice"}, "sender.login"),
        ({"sender": None}, "sender.login"),
        ({"check_run.head_sha": "main"}, "check_run.head_sha"),
        ({"check_run.id": "7"}, "check_run.id"),
        ({"check_run.id": 0}, "check_run.id"),
        ({"repository.full_name": "acme/../etc"}, "repository.full_name"),
    ],
)
def test_a_malformed_press_is_a_422_naming_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(Unprocessable) as caught:
        parse(_changed(pressed("digits-0123456789", "promote", "alice", sha="a" * 40), change))
    assert caught.value.field == field and "\n" not in caught.value.message


def _changed(payload: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    for dotted, value in change.items():
        *path, last = dotted.split(".")
        node = payload
        for key in path:
            node = node[key]
        node[last] = value
    return payload


# -- the buttons follow the run ----------------------------------------------------------------------------------


def test_a_waiting_run_shows_promote_and_reject_then_rollback_once_promoted() -> None:
    w = World({"maintainer": "write"})
    run = w.gated()
    assert run.state is S.AWAITING_APPROVAL
    assert w.check_runs.buttons() == [["promote", "reject"]]
    (_, check_run_id, note, buttons) = w.check_runs.updates[0]
    assert check_run_id == 7 and note.startswith("Waiting for approval")
    assert buttons == check_run_actions(["promote", "reject"])
    w.orch.advance(w.store.runs[run.id])  # nothing changed: no second update
    assert len(w.check_runs.updates) == 1
    assert w.press(run, "promote", "maintainer")["outcome"] == "action requested"
    assert w.store.runs[run.id].state is S.PROMOTED
    assert w.check_runs.buttons() == [["promote", "reject"], ["rollback"]]
    assert w.check_runs.updates[-1][2] == "v1 promoted: Rollback puts the previous model back"


def test_buttons_github_did_not_take_are_sent_again_at_the_next_change() -> None:
    w = World()
    w.check_runs.accept = False
    run = w.gated()
    assert w.check_runs.buttons() == [["promote", "reject"]]
    assert [e for e in w.store.timeline(run.id) if e.kind == "check_run"][-1].data["actions"] == []
    w.check_runs.accept = True
    w.orch.advance(w.store.runs[run.id])
    assert w.check_runs.buttons() == [["promote", "reject"], ["promote", "reject"]]


def test_a_run_without_a_recorded_check_run_updates_nothing() -> None:
    w = World()
    w.run_to_gate(1)
    assert w.check_runs.updates == []


# -- presses ---------------------------------------------------------------------------------------------------


def test_a_reader_pressing_promote_is_told_why_on_the_check_run_and_nothing_changes() -> None:
    w = World({"visitor": "read"})
    run = w.gated()
    w.press(run, "promote", "visitor")
    assert w.store.runs[run.id].state is S.AWAITING_APPROVAL
    assert w.store.get_effect(run.id, Effect.PROMOTION_APPROVAL) is None
    why = f"@visitor: Promote needs write access to {REPO}; you have read"
    assert w.check_runs.updates[-1] == (REPO, 7, why, None)  # the buttons stay for someone who may
    assert why in [e.message for e in w.store.timeline(run.id) if e.kind == "warning"]
    assert w.permissions.asked == [(REPO, "visitor")]


def test_a_redelivered_press_is_handled_once_and_a_second_press_is_told_the_run_moved_on() -> None:
    w = World({"maintainer": "write"})
    run = w.gated()
    w.press(run, "reject", "maintainer", delivery="d-1")
    assert w.store.runs[run.id].state is S.REJECTED
    assert w.store.runs[run.id].reason == "rejected by maintainer (GitHub check run)"
    updates = len(w.check_runs.updates)
    w.press(run, "reject", "maintainer", delivery="d-1")  # GitHub's redelivery: the ingest resends the nudge
    assert len(w.check_runs.updates) == updates and w.permissions.asked == [(REPO, "maintainer")]
    w.press(run, "promote", "maintainer", delivery="d-2")  # a second press
    assert w.store.runs[run.id].state is S.REJECTED
    assert w.check_runs.updates[-1][2].startswith(f"@maintainer: Promote refused: run {run.id} was not rejected by its")


def test_promote_on_a_run_the_gate_rejected_overrides_it_once_for_a_writer() -> None:
    w = World({"lead": "admin"})
    w.spec = w.spec.model_copy(update={"gate": w.spec.gate.model_copy(update={"approval": "none"})})
    run = w.gated(1, BAD)
    assert run.state is S.REJECTED and w.check_runs.buttons() == [["promote"]]
    assert w.check_runs.updates[0][3] == check_run_actions(["promote"], override=True)
    w.press(run, "promote", "lead", delivery="d-1")
    w.press(run, "promote", "lead", delivery="d-2")  # a double click
    done = w.store.runs[run.id]
    assert done.state is S.PROMOTED and len([e for e in w.store.timeline(run.id) if e.kind == "override"]) == 1
    assert w.check_runs.updates[-2][2] == "v1 promoted (gate overridden by lead): Rollback puts the previous model back"
    assert w.check_runs.updates[-1][2] == f"@lead: Promote refused: run {run.id} is already promoted"


def test_rollback_by_a_writer_puts_the_previous_model_back_and_the_button_goes() -> None:
    w = World({"maintainer": "maintain"})
    w.spec = w.spec.model_copy(update={"gate": w.spec.gate.model_copy(update={"approval": "none"})})
    w.run_to_gate(1)
    second = w.gated(2)
    assert second.state is S.PROMOTED and w.registry.champions["digits"] == "v2"
    w.press(second, "rollback", "maintainer")
    assert w.store.runs[second.id].state is S.ROLLED_BACK and w.registry.champions["digits"] == "v1"
    assert w.check_runs.buttons() == [["rollback"], []]
    asked = w.store.get_effect(second.id, Effect.ROLLBACK_ASKED)
    assert asked is not None and (asked["by"], asked["permission"]) == ("maintainer", "maintain")


def test_a_press_whose_check_run_is_not_the_runs_own_does_nothing() -> None:
    w = World({"maintainer": "write"})
    run = w.gated()
    other_commit = CheckRunAction(
        run_id=run.id, repo=REPO, sha="b" * 40, check_run_id=7, login="maintainer", action="promote", delivery="x"
    )
    other_check_run = other_commit.model_copy(update={"sha": run.trigger.sha, "check_run_id": 8})
    for command in (other_commit, other_check_run, other_commit.model_copy(update={"repo": "evil/digits"})):
        w.orch.handle(command)
    assert w.store.runs[run.id].state is S.AWAITING_APPROVAL and w.permissions.asked == []
    assert len(w.check_runs.updates) == 1  # the buttons shown at the wait, nothing said on anyone's check run


def test_nobody_may_press_when_relaunch_cannot_ask_github() -> None:
    w = World()
    w.orch.buttons.permissions = None
    run = w.gated()
    w.press(run, "promote", "maintainer")
    assert w.store.runs[run.id].state is S.AWAITING_APPROVAL
    assert w.check_runs.updates[-1][2] == (
        f"@maintainer: Promote needs write access to {REPO}; relaunch has no GitHub token to check permissions with"
    )


def test_a_note_replaces_the_earlier_one_and_keeps_the_report() -> None:
    first = noted_output("Waiting for approval", "## Gate report\n\n| m | v |")
    second = noted_output("@bob: Promote needs\nwrite access", first["summary"], "more")
    assert second["title"] == "@bob: Promote needs write access" and second["text"] == "more"
    assert second["summary"].endswith("> @bob: Promote needs write access\n\n## Gate report\n\n| m | v |")
    assert second["summary"].count("relaunch:note") == 1
