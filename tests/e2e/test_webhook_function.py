"""github_webhook served by functions-framework: refusals, dedupe and skips, with nothing half-written; and the
dashboard beside it, as `relaunch up` serves it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from pydantic import SecretStr

from relaunch.adapters.local.stack import EmbeddedStack
from relaunch.bootstrap import App, embedded_stack
from relaunch.settings import Settings
from relaunch.simulate import github_headers

pytestmark = pytest.mark.e2e
SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "github"
ROOT = Path(__file__).resolve().parents[2]
SECRET = "e2e-secret"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    settings = Settings(
        home=tmp_path_factory.mktemp("home"), pipelines_dir=ROOT / "pipelines", github_webhook_secret=SecretStr(SECRET)
    )
    with embedded_stack(settings, functions=("github_webhook", "dashboard")) as running:  # as `relaunch up`
        yield running


def post(stack: EmbeddedStack, body: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.post(stack.url_of("github_webhook"), data=body, headers=headers, timeout=10)


def test_wrong_signature_is_401_and_writes_nothing(stack: EmbeddedStack) -> None:
    body = (SAMPLES / "push.2.json").read_bytes()
    reply = post(stack, body, github_headers("push", body, "not-the-secret", "bad-sig"))
    assert reply.status_code == 401 and "Traceback" not in reply.text
    assert reply.json()["field"] == "X-Hub-Signature-256"
    assert App(stack.settings).store.get_delivery("github:bad-sig") is None


def test_unwatched_push_is_skipped_and_a_redelivery_is_a_duplicate(stack: EmbeddedStack) -> None:
    body = (SAMPLES / "push.2.json").read_bytes()
    headers = github_headers("push", body, SECRET, "dup-1")
    first, again = post(stack, body, headers), post(stack, body, headers)
    assert first.status_code == 202 and first.json()["reason"] == "no pipeline watches Codertocat/Hello-World"
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    delivery = App(stack.settings).store.get_delivery("github:dup-1")
    assert delivery is not None and delivery.headers["X-Hub-Signature-256"] == "[redacted]"


def test_malformed_and_wrongly_shaped_bodies_get_4xx_naming_the_problem(stack: EmbeddedStack) -> None:
    broken = b'{"ref": '
    assert post(stack, broken, github_headers("push", broken, SECRET)).status_code == 400
    shaped = json.dumps({"ref": 5, "after": "x", "repository": {}}).encode()
    reply = post(stack, shaped, github_headers("push", shaped, SECRET))
    assert reply.status_code == 422 and reply.json()["field"]


def test_the_dashboard_is_served_beside_it_and_is_what_reports_link_to(stack: EmbeddedStack) -> None:
    """One stack with the dashboard (as `relaunch up` runs it): its URL is the public URL, its token a 0600 file,
    the runs page answers, and a live stream answers through gunicorn's threads."""
    url = stack.url_of("dashboard")
    assert stack.settings.public_url == url.rstrip("/")
    token = stack.settings.secrets_dir / "dashboard_token"
    assert token.stat().st_mode & 0o777 == 0o600 and token.read_text().strip()
    page = requests.get(url + "runs", timeout=10)
    assert page.status_code == 200 and 'name="viewport"' in page.text
    with requests.get(url + "live/runs", stream=True, timeout=10) as live:
        lines = live.iter_lines(decode_unicode=True)
        assert next(lines) == "retry: 1000" and next(line for line in lines if line) == "event: update"
    refused = requests.post(url + "actions/replay", data={"key": "x"}, timeout=10)
    assert refused.status_code == 401 and refused.json()["field"] == "token"
