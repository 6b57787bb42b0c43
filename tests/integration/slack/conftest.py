"""The Slack incoming webhook stand-in (relaunch.emulated.slack), as a fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from relaunch.emulated.slack import HOOK_PATH, FakeSlack, serve_slack

__all__ = ["HOOK_PATH", "FakeSlack", "slack"]


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    """A FakeSlack on a free loopback port; `slack.url` is the full webhook URL."""
    with serve_slack() as fake:
        yield fake
