"""The commands that start a stack (`up`, `demo`) first take the secrets out of their own environment."""

from __future__ import annotations

import argparse
import os


def without_secrets_in_environment(args: argparse.Namespace) -> None:
    """Re-execute once with the configured secrets moved from this process's environment into memory."""
    # The stack is an ancestor of every job, and /proc/<pid>/environ keeps what exec got for the process's life.
    from relaunch.handoff import reexec_without_secrets, take_handed_secrets
    from relaunch.settings import secret_fields

    os.umask(0o077)  # every state file 0600, every folder 0700, in this process and all it starts
    reexec_without_secrets(secret_fields(), args.exec_argv)
    take_handed_secrets()  # close the descriptor now: nothing this process starts may inherit it
