"""The Vertex AI stand-in the boundary tests use; it lives in relaunch.emulated.vertex (the demo runs on it too)."""

from relaunch.emulated.vertex import TYPE, ApiError, FakeVertex, JobRunner, Refusal, VertexServer, now

__all__ = ["TYPE", "ApiError", "FakeVertex", "JobRunner", "Refusal", "VertexServer", "now"]
