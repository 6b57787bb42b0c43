"""Headless Chromium for the dashboard's browser tests: Debian's `chromium` driven by Playwright.

Playwright's own browser download cannot be fetched on these machines, so Playwright launches the system's Chromium
(RELAUNCH_CHROMIUM, else the first `chromium` or `chromium-browser` on PATH). A test skips, saying why, when either is
missing, and fails instead where RELAUNCH_REQUIRE_BROWSER=1 (CI sets it after installing Chromium in .ci/run).

The flags keep the browser off the network: without the background-networking ones Chromium keeps dialling Google's
hosts, which this machine's closed network refuses; every page a test opens is on loopback.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

REQUIRED = "RELAUNCH_REQUIRE_BROWSER"
FLAGS = [
    "--headless",
    "--no-sandbox",  # root in a container has no user namespace for the sandbox
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """The system Chromium to launch, if there is one."""
    chosen = os.environ.get("RELAUNCH_CHROMIUM")
    if chosen:
        return chosen if os.access(chosen, os.X_OK) else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _unavailable() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401  # the test extra installs it
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    if chromium_path() is None:
        return "no Chromium: apt-get install chromium, or set RELAUNCH_CHROMIUM to its path"
    return None


def skip_unless_browser() -> None:
    """Skip (or fail, where required) when the browser cannot be launched here."""
    reason = _unavailable()
    if reason is not None and os.environ.get(REQUIRED) == "1":
        pytest.fail(f"browser unavailable but {REQUIRED}=1: {reason}")
    if reason is not None:
        pytest.skip(f"browser unavailable: {reason}")


@contextmanager
def chromium_page(*, width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A Playwright page in a fresh headless Chromium with an empty profile; closed (browser and all) on exit."""
    skip_unless_browser()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="relaunch-chromium-") as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=chromium_path(), args=FLAGS, viewport={"width": width, "height": height}
        )
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()
