"""The GitHub stand-in moved to relaunch.emulated.github; re-exported for the boundary tests."""

from relaunch.emulated.github import FakeGitHub, ScriptedError, serve
from relaunch.emulated.github_app import FakeApp
from relaunch.emulated.github_openapi import OPENAPI, Recorded, openapi_operations

__all__ = ["OPENAPI", "FakeApp", "FakeGitHub", "Recorded", "ScriptedError", "openapi_operations", "serve"]
