"""The Cloud Build stand-in moved to relaunch.emulated.cloudbuild; this name is kept for older imports."""

from relaunch.emulated.cloudbuild import (
    FakeCloudBuild,
    LocalBuilds,
    base64_id,
    secrets_problem,
    serve,
    step_outputs,
    substitute,
)

__all__ = ["FakeCloudBuild", "LocalBuilds", "base64_id", "secrets_problem", "serve", "step_outputs", "substitute"]
