"""A canary's bake is decided at its own deadline, on the real embedded stack: the rollout schedules a look at the
bake's end on the bus, which delivers it then. The reconcile tick is set 10 minutes away, so only the look can act;
what is asserted is the scheduled time and that the decision came right after it (generous slack: no timing test that
load could break)."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr

from relaunch.bootstrap import App, embedded_stack
from relaunch.demo import make_repo
from relaunch.domain.model import RunState
from relaunch.settings import Settings
from tests.e2e.push_stack import PUSH_FUNCTIONS
from tests.e2e.test_rollout_e2e import ROOT, canary_spec, push

pytestmark = pytest.mark.e2e
TICK_S = 600.0


def test_a_quiet_bake_is_decided_at_its_deadline_not_at_the_reconcile_tick(tmp_path: Path) -> None:
    folder = canary_spec(tmp_path / "pipelines")
    spec = yaml.safe_load((folder / "digits.yaml").read_text())
    spec["rollout"].update(bake_s=3, on_no_traffic="roll_back")  # nobody sends traffic in this test
    (folder / "digits.yaml").write_text(yaml.safe_dump(spec))
    settings = Settings(
        home=tmp_path / "home",
        pipelines_dir=folder,
        github_webhook_secret=SecretStr(secrets.token_hex(16)),
        reconcile_interval_s=TICK_S,
    )
    stack = embedded_stack(settings, functions=PUSH_FUNCTIONS).start()
    try:
        repo = make_repo(ROOT / "examples" / "digits", tmp_path / "digits")
        app = App(stack.settings)
        assert push(stack, repo, app).model_version == "v1"
        run = push(stack, repo, app, {"C": 1.0, "max_iter": 2001})
        assert run.state is RunState.ROLLED_BACK and "no traffic in 3 s (on_no_traffic: roll_back)" in run.reason
        timeline = app.store.timeline(run.id)
        canary = next(e for e in timeline if e.message.startswith("set_traffic: canary"))
        waiting = next(e for e in timeline if e.message.startswith("waiting: baking"))
        deadline = waiting.data["until"]
        assert abs(deadline - (canary.at + 3)) < 0.5  # the look is due at the bake's own end
        assert app.store.get_effect(run.id, f"rollout:look:{deadline:.3f}") == {"not_before": deadline}
        decided = next(e for e in timeline if e.message.startswith("roll_back:"))
        assert deadline <= decided.at < deadline + 15, decided.at - deadline  # the tick would come ~600 s later
    finally:
        stack.stop()
        shutil.rmtree(tmp_path / "digits", ignore_errors=True)
