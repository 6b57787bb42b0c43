"""The dashboard function as functions-framework serves it, over real SQLite: reads, refusals, actions, SSE."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask
import functions_framework
import pytest
from flask.testing import FlaskClient
from pydantic import SecretStr
from werkzeug.test import TestResponse

from relaunch import bootstrap
from relaunch.dashboard.auth import COOKIE, derived
from relaunch.dashboard.web import Dashboard
from relaunch.domain.model import Check, Decision, Delivery, PipelineRun, RunState, TimelineEntry, Trigger
from relaunch.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SOURCE = str(ROOT / "src" / "relaunch" / "functions" / "main.py")
TOKEN = "dashboard-test-token"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[bootstrap.App]:
    built = bootstrap.App(Settings(home=tmp_path, pipelines_dir=ROOT / "pipelines", dashboard_token=SecretStr(TOKEN)))
    bootstrap.use(built)
    yield built
    bootstrap.use(None)


def client() -> FlaskClient:
    return functions_framework.create_app("dashboard", SOURCE).test_client()


def add_run(app: bootstrap.App, state: RunState = RunState.AWAITING_APPROVAL, **extra: object) -> PipelineRun:
    trigger = Trigger(kind="push", delivery_key="k1", repo="acme/digits", ref="refs/heads/<b>", sha="b" * 40)
    run = PipelineRun(id="digits-abc", pipeline="digits", trigger=trigger, state=state).model_copy(update=extra)
    app.store.record_delivery(Delivery(key="k1", source="github", run_ids=[run.id]), [run])
    return app.store.get_run(run.id) or run


def test_pages_read_openly_on_loopback_and_name_unknown_runs_and_bad_filters(app: bootstrap.App) -> None:
    add_run(app)
    c = client()
    listed = c.get("/runs")
    assert listed.status_code == 200 and 'data-run-id="digits-abc" data-state="awaiting_approval"' in listed.text
    assert "&lt;b&gt;" in listed.text and "<b>" not in listed.text.replace("<b>relaunch", "")
    assert c.get("/runs/digits-abc").status_code == 200
    missing = c.get("/runs/nope")
    assert missing.status_code == 404 and body(missing) == {"error": "run_id: no run 'nope'", "field": "run_id"}
    bad = c.get("/runs?state=sideways")
    assert bad.status_code == 400 and body(bad)["field"] == "state"
    assert c.get("/pipelines").status_code == 200 and c.get("/inbox").status_code == 200
    assert c.get("/assets/dashboard.js").status_code == 200 and c.get("/nowhere").status_code == 404


def test_reads_off_the_embedded_store_need_the_token(app: bootstrap.App) -> None:
    assert app.store is not None  # the SQLite store stays; the setting below only says "not the embedded one"
    app.settings = app.settings.model_copy(update={"store": "firestore"})  # as on GCP: no open reads
    c = client()
    assert c.get("/runs").status_code == 401
    c.set_cookie(COOKIE, derived(TOKEN, "session"))
    assert c.get("/assets/dashboard.css").status_code == 200  # assets are public
    assert c.get("/inbox").status_code == 200


def test_actions_need_the_token_and_the_forms_own_field(app: bootstrap.App) -> None:
    add_run(app, awaiting="promotion")
    c = client()
    refused = c.post("/actions/approve", data={"run_id": "digits-abc"})
    assert refused.status_code == 401 and body(refused)["field"] == "token"
    c.set_cookie(COOKIE, derived(TOKEN, "session"))
    assert body(c.post("/actions/approve", data={"run_id": "digits-abc"}))["field"] == "csrf"
    foreign = c.post("/actions/approve", data={"run_id": "x"}, headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403
    csrf = derived(TOKEN, "form")
    assert body(c.post("/actions/reject", data={"run_id": "digits-abc", "csrf": csrf}))["field"] == "reason"
    assert c.post("/actions/explode", data={"csrf": csrf}).status_code == 404
    page = c.get("/runs/digits-abc").text
    assert 'id="approve-digits-abc"' in page and re.search(r'name="csrf" value="[0-9a-f]{64}"', page)
    done = c.post("/actions/approve", data={"run_id": "digits-abc", "csrf": csrf})
    assert done.status_code == 303 and "approved" in done.headers["Location"]
    again = c.post("/actions/approve", data={"run_id": "digits-abc", "csrf": csrf})
    assert again.status_code == 409 and "error" in body(again)


def test_bearer_rollback_names_an_unknown_environment_and_says_when_nothing_rolls_back(app: bootstrap.App) -> None:
    c, auth = client(), {"Authorization": f"Bearer {TOKEN}"}
    unknown = c.post("/actions/rollback", data={"pipeline": "digits", "env": "mars"}, headers=auth)
    assert unknown.status_code == 404 and body(unknown)["field"] == "env"
    spec = app.specs()["digits"]
    env = spec.environments[0].name if spec.environments else spec.endpoint
    nothing = c.post("/actions/rollback", data={"pipeline": "digits", "env": env}, headers=auth)
    assert nothing.status_code == 409 and "nothing to roll back" in body(nothing)["error"]
    wrong = c.post("/actions/rollback", data={"pipeline": "digits", "env": env}, headers={"Authorization": "Bearer x"})
    assert wrong.status_code == 401


def test_signing_in_sets_a_strict_cookie_and_a_wrong_token_is_refused(app: bootstrap.App) -> None:
    c = client()
    assert c.post("/login", data={"token": "nope"}).status_code == 401
    signed = c.post("/login", data={"token": TOKEN})
    cookie = signed.headers["Set-Cookie"]
    assert signed.status_code == 303 and "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie


def test_a_run_stream_sends_an_event_after_the_store_changed(app: bootstrap.App) -> None:
    run = add_run(app, state=RunState.TRAINING)
    web = flask.Flask("t")
    dash = Dashboard(app, live_s=5.0, poll_s=0.05)
    web.add_url_rule("/<path:p>", "all", lambda p: dash.respond(flask.request))
    response = web.test_client().get("/live/runs/digits-abc", buffered=False)
    assert response.mimetype == "text/event-stream"
    chunks = iter(response.response)
    assert _text(next(chunks)).startswith("retry:")
    first = next(c for c in chunks if "event: update" in _text(c))
    assert 'data-state=\\"training\\"' in _text(first)
    app.store.save_run(
        run.model_copy(update={"state": RunState.EVALUATING}), [TimelineEntry(kind="state", message="x")]
    )
    second = next(c for c in chunks if "event: update" in _text(c))
    assert 'data-state=\\"evaluating\\"' in _text(second)
    response.close()


def body(response: TestResponse) -> dict[str, Any]:
    """A refusal's JSON body."""
    found = response.get_json()
    assert isinstance(found, dict)
    return found


def _text(chunk: object) -> str:
    return chunk.decode() if isinstance(chunk, bytes) else str(chunk)


def test_promote_overrides_a_gate_rejection_as_the_run_actions_record_it(app: bootstrap.App) -> None:
    decision = Decision(promote=False, checks=[Check(name="floor:accuracy", passed=False, detail="low")], candidate={})
    add_run(app, state=RunState.REJECTED, decision=decision, reason="gate rejected")
    c = client()
    c.set_cookie(COOKIE, derived(TOKEN, "session"))
    assert 'id="promote-digits-abc"' in c.get("/runs/digits-abc").text
    done = c.post("/actions/promote", data={"run_id": "digits-abc", "csrf": derived(TOKEN, "form")})
    assert done.status_code == 303
    run = app.store.get_run("digits-abc")
    assert run is not None and run.state is RunState.ROLLING_OUT
    assert [e.kind for e in app.store.timeline("digits-abc")][-1] == "override"
    shown = c.get(done.headers["Location"]).text
    assert 'id="flash">digits-abc: promoted by the dashboard' in shown


def test_a_crafted_message_is_not_shown_and_a_path_of_invalid_utf8_is_a_404(app: bootstrap.App) -> None:
    c = client()
    assert 'id="flash"' not in c.get("/runs?said=Your+token+expired,+enter+it+at+evil.example&sig=00").text
    missing = c.get("/runs/%ff%ed%a0%80")
    assert missing.status_code == 404 and body(missing)["field"] == "run_id"


def test_the_run_page_draws_the_gate_report_from_the_evaluations_own_files(app: bootstrap.App) -> None:
    candidate, champion = [1] * 45 + [0] * 5, [1] * 40 + [0] * 10
    decision = Decision(
        promote=True,
        checks=[Check(name="floor:accuracy", passed=True, detail="ok")],
        candidate={"accuracy": 0.9},
        champion={"accuracy": 0.8},
        champion_version="v1",
    )
    add_run(app, state=RunState.PROMOTED, decision=decision, champion_version="v1")
    folder = Path(app.blobs.join(app.artifact_root, "runs", "digits-abc", "evaluation"))
    folder.mkdir(parents=True)
    (folder / "outcomes.json").write_text(json.dumps({"candidate": candidate, "champion": champion}))
    confusion = {"labels": ["<i>0</i>", "1"], "matrix": [[20, 2], [3, 25]]}
    (folder / "metrics.json").write_text(json.dumps({"candidate": {"accuracy": 0.9}, "confusion": confusion}))
    page = client().get("/runs/digits-abc").text
    charts = page.split('id="gate-charts"', 1)[1]
    assert charts.count("<svg") == 4 and "Paired outcomes on 50 examples (5 fixed, 0 broken)" in charts
    assert "&lt;i&gt;0&lt;/i&gt;" in charts and "<i>0</i>" not in page


def test_a_dns_rebound_page_on_loopback_does_not_read_openly(app: bootstrap.App) -> None:
    """A site that rebinds its own name to 127.0.0.1 reaches the port from the victim's browser, with its own Host."""
    add_run(app)
    c = client()
    assert c.get("/runs", headers={"Host": "attacker.example:8080"}).status_code == 401
    assert c.get("/runs", headers={"Host": "127.0.0.1:8080"}).status_code == 200
    assert c.get("/runs", headers={"Host": "[::1]:8080"}).status_code == 200
    assert c.get("/runs", headers={"Host": "localhost"}).status_code == 200


def test_the_run_page_shows_what_the_jobs_logged_to_wandb(app: bootstrap.App) -> None:
    """The same W&B rows as `relaunch runs show`: the offline runs, the model they logged and the one evaluated."""
    run = add_run(app, RunState.PROMOTED)
    offline = Path(__file__).resolve().parents[1] / "fixtures" / "wandb-offline"
    shutil.copytree(offline, Path(app.artifact_root) / "runs" / run.id / "wandb")
    page = " ".join(client().get(f"/runs/{run.id}").text.split())
    assert "W&amp;B train" in page and "logged relaunch-demo/digits/digits-model:relaunch-digits-1" in page
    assert "W&amp;B evaluate" in page and "used relaunch-demo/digits/digits-model:relaunch-digits-1" in page
