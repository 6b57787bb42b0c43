"""The W&B stand-in moved to relaunch.emulated.wandb; re-exported for the boundary tests."""

from relaunch.emulated.wandb import Call, FakeArtifact, FakeWandb, basic_auth, serve

__all__ = ["Call", "FakeArtifact", "FakeWandb", "basic_auth", "serve"]
