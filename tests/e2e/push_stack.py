"""The functions a push-driven test's stack needs: the webhook a push (or a PR label) arrives at, the orchestrator,
and reconcile for its ticks. The other five (W&B, drift, schedule, Cloud Build and Vertex events) would cost about
0.65 s of CPU each to start and serve nothing here; the demo's tests start them all, as `relaunch up` does."""

from __future__ import annotations

PUSH_FUNCTIONS = ("github_webhook", "orchestrator", "reconcile")
