"""The dashboard in a real browser (headless Chromium, tests/browser.py) on the real embedded stack: a push appears on
the runs page and goes through its stages to `promoted` without a reload, the run page's timeline grows live, and a
Rollback pressed on the pipelines page moves the traffic back, also seen without a reload.

With RELAUNCH_DOCS_SCREENSHOTS=1 the run page and the pipelines page are saved under docs/ (what the README shows).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from relaunch.adapters.local.stack import DASHBOARD, EmbeddedStack
from relaunch.bootstrap import App, embedded_stack
from relaunch.demo import DEMO_REPO, make_repo, project_root
from relaunch.domain.model import RunState
from relaunch.settings import Settings
from relaunch.simulate import git, push_payload, send_github
from tests.browser import chromium_page, skip_unless_browser
from tests.e2e.push_stack import PUSH_FUNCTIONS

pytestmark = pytest.mark.e2e
ROOT = project_root()
DOCS = ROOT / "docs"
WAIT_MS = 90_000  # a first push builds the example's environment when the suite has not yet

# Every state a row showed, in order, recorded in the page by a MutationObserver: the proof that the page moved by
# itself. `window.__loaded` is set once: a reload would lose it.
WATCH_ROWS = """() => {
  window.__loaded = true;
  window.__seen = {};
  const note = (row) => {
    const id = row.dataset.runId, state = row.dataset.state, seen = (window.__seen[id] = window.__seen[id] || []);
    if (id && state && seen[seen.length - 1] !== state) seen.push(state);
  };
  const scan = () => document.querySelectorAll("tr[data-run-id]").forEach(note);
  new MutationObserver(scan).observe(document.body, {subtree: true, childList: true, attributes: true});
  scan();
}"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedStack, Path, App]]:
    skip_unless_browser()  # before a stack costs anything
    work = tmp_path_factory.mktemp("dashboard")
    spec = yaml.safe_load((ROOT / "pipelines" / "digits.yaml").read_text())
    spec["source"]["clone_url"] = (work / "digits").resolve().as_uri()  # a run clones only its spec's URL
    spec.pop("tracking", None)  # W&B logging is not what this test watches
    (work / "pipelines").mkdir()
    (work / "pipelines" / "digits.yaml").write_text(yaml.safe_dump(spec))
    settings = Settings(
        home=work / "home",
        pipelines_dir=work / "pipelines",
        github_webhook_secret=SecretStr(secrets.token_hex(16)),
        reconcile_interval_s=0.3,
    )
    stack = embedded_stack(settings, functions=(*PUSH_FUNCTIONS, DASHBOARD)).start()
    try:
        repo = make_repo(ROOT / "examples" / "digits", work / "digits")
        yield stack, repo, App(stack.settings)
    finally:
        stack.stop()
        shutil.rmtree(work / "digits", ignore_errors=True)


def push(stack: EmbeddedStack, repo: Path, params: dict[str, Any] | None = None) -> str:
    """Commit (with new params, if given) and send the push; the id of the run it started."""
    before = None
    if params is not None:
        before = git(repo, "rev-parse", "HEAD")
        (repo / "params.json").write_text(json.dumps(params) + "\n")
        git(repo, "commit", "-qam", f"params {params}")
    payload = push_payload(repo, full_name=DEMO_REPO, before=before)
    reply = send_github(stack.url_of("github_webhook"), "push", payload, stack.settings.webhook_secret() or "")
    assert reply.status_code == 202, reply.text
    return str(reply.json()["runs"][0])


def screenshot(page: Any, name: str, tmp: Path) -> None:
    """Keep a picture of the page: in the test's folder always, under docs/ when asked for."""
    page.screenshot(path=str(tmp / name), full_page=True)
    if os.environ.get("RELAUNCH_DOCS_SCREENSHOTS") == "1":
        DOCS.mkdir(exist_ok=True)
        shutil.copyfile(tmp / name, DOCS / name)


def test_a_push_promotes_and_a_rollback_moves_traffic_live_on_the_page(
    world: tuple[EmbeddedStack, Path, App], tmp_path: Path
) -> None:
    stack, repo, app = world
    base = stack.url_of(DASHBOARD).rstrip("/")
    token = (stack.settings.secrets_dir / "dashboard_token").read_text().strip()

    with chromium_page() as page:
        page.set_default_timeout(WAIT_MS)
        page.on("dialog", lambda dialog: dialog.accept())  # a confirm() before an action: say yes
        page.goto(f"{base}/runs")
        page.evaluate(WATCH_ROWS)

        first = push(stack, repo)
        page.wait_for_selector(f'tr[data-run-id="{first}"][data-state="promoted"]')
        seen = page.evaluate(f"() => window.__seen[{json.dumps(first)}]")
        assert seen[-1] == "promoted" and len(seen) >= 3, seen  # stages shown as they happened, not only the end
        assert page.evaluate("() => window.__loaded") is True  # the page was never reloaded

        # The run page: open while the second run goes, its timeline grows and its state moves by itself.
        second = push(stack, repo, {"C": 1.0, "max_iter": 2001})
        page.goto(f"{base}/runs/{second}")
        page.evaluate("() => { window.__loaded = true; }")
        entries_at_open = page.locator("ol#timeline > li").count()
        page.wait_for_selector('#run-state[data-state="promoted"]')
        assert page.locator("ol#timeline > li").count() > entries_at_open
        assert page.evaluate("() => window.__loaded") is True
        assert page.locator("#gate-charts svg").count() >= 1  # the gate report is drawn, not only tabled
        screenshot(page, "dashboard-run.png", tmp_path)
        page.set_viewport_size({"width": 390, "height": 844})  # a phone: the page fits its width, tables scroll
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
        screenshot(page, "dashboard-run-phone.png", tmp_path)
        page.set_viewport_size({"width": 1280, "height": 900})
        assert app.endpoint.traffic("digits") == {"v2": 100}

        # Sign in, then press Rollback on the pipelines page: the traffic split moves back to v1 on the page.
        page.goto(f"{base}/login")
        page.fill("input[name=token]", token)
        page.click("button#sign-in")
        page.goto(f"{base}/pipelines")
        traffic = page.locator("#traffic-digits")
        assert "v2" in traffic.inner_text() and "100" in traffic.inner_text()
        rollback = page.locator("button[id^='rollback-digits-']").first
        rollback.click()
        page.wait_for_function(
            "() => { const t = document.querySelector('#traffic-digits'); return t && /v1\\b/.test(t.innerText); }"
        )
        assert "rolled back" in page.locator("#flash").inner_text().lower()
        screenshot(page, "dashboard-pipelines.png", tmp_path)

    deadline = time.monotonic() + 10
    while app.endpoint.traffic("digits") != {"v1": 100} and time.monotonic() < deadline:
        time.sleep(0.1)
    assert app.endpoint.traffic("digits") == {"v1": 100}
    assert app.registry.champion("digits").version == "v1"  # type: ignore[union-attr]
    run = app.store.get_run(second)
    assert run is not None and run.state is RunState.ROLLED_BACK
