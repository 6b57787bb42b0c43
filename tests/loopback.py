"""The loopback server and request record moved to relaunch.emulated.loopback; re-exported for the tests."""

from relaunch.emulated.loopback import Recorded, loopback_server

__all__ = ["Recorded", "loopback_server"]
