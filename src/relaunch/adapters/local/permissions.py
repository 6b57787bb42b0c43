"""The embedded profile's permissions without a GitHub token: it knows no one, so only `relaunch approve` approves."""

from __future__ import annotations


class NobodyPermissions:
    """Implements ports.RepoPermissions: every login has no permission on every repository."""

    def permission(self, repo: str, login: str) -> str:
        """Always "none": without GitHub's answer nobody is trusted to approve by label."""
        return "none"
