"""The Cloud Storage stand-in moved to relaunch.emulated.gcs; re-exported for the boundary tests."""

from relaunch.emulated.gcs import FakeGcs, GcsServer, gcs_server

__all__ = ["FakeGcs", "GcsServer", "gcs_server"]
