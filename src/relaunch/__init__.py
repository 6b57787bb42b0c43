"""relaunch: event-driven automation for the model lifecycle."""

__version__ = "0.1.0"
