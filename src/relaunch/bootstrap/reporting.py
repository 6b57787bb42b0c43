"""Part of the composition root: what reports back (timeline, GitHub, Slack) and what asks GitHub.

Each adapter is imported when it is built, so a function that never reports pays nothing for GitHub's client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from relaunch.settings import Settings, reveal

if TYPE_CHECKING:
    from relaunch.adapters.github.client import GitHubApp
    from relaunch.domain.ports import CommitHistory, Notifier, RepoPermissions, RunStore
    from relaunch.domain.tracking_sync import TrackingSync
    from relaunch.service.check_run_step import CheckRunUpdates


def notifier(s: Settings, store: RunStore) -> Notifier:
    """The timeline always (`relaunch runs show` reads it), plus GitHub and Slack when configured."""
    from relaunch.adapters.fanout import FanoutNotifier
    from relaunch.adapters.local.notifier import TimelineNotifier

    github = github_identity(s)
    # Deployments are recorded by GitHub's notifier when there is one: it knows each deployment's id.
    notifiers: list[Notifier] = [TimelineNotifier(store, deployments=not github, public_url=s.public_url)]
    if github:
        from relaunch.adapters.github.notifier import GitHubNotifier

        notifiers.append(
            GitHubNotifier(
                github,
                base_url=s.github_api_url,
                app_token=s.github_token_is_app,
                public_url=s.public_url,
                timeline=store.append_timeline,
            )
        )
    slack = reveal(s.slack_webhook_url)
    if slack:
        from relaunch.adapters.slack import SlackNotifier

        notifiers.append(SlackNotifier(slack, public_url=s.public_url))
    return FanoutNotifier(notifiers) if len(notifiers) > 1 else notifiers[0]


def permissions(s: Settings) -> RepoPermissions:
    """Who may approve a fork's run: GitHub's answer when a token is configured, else nobody (CLI only)."""
    github = github_identity(s)
    if github:
        from relaunch.adapters.github.permissions import GitHubPermissions

        return GitHubPermissions(github, base_url=s.github_api_url)
    from relaunch.adapters.local.permissions import NobodyPermissions

    return NobodyPermissions()


def check_runs(s: Settings) -> CheckRunUpdates | None:
    """Who updates the gate check run's buttons: the GitHub App (only an App makes check runs), else nobody."""
    github = github_identity(s)
    from relaunch.adapters.github.client import GitHubApp

    if not github or not (s.github_token_is_app or isinstance(github, GitHubApp)):
        return None
    from relaunch.adapters.github.check_runs import GitHubCheckRuns

    return GitHubCheckRuns(github, base_url=s.github_api_url)


def history(s: Settings) -> CommitHistory:
    """How two commits stand: git from a local cache, or GitHub's compare API (the token is optional for public
    repositories, where GitHub allows a few dozen anonymous requests an hour)."""
    if s.adapter("history") == "github":
        from relaunch.adapters.github.history import GitHubHistory

        return GitHubHistory(github_identity(s), base_url=s.github_api_url)
    from relaunch.adapters.local.history import LocalGitHistory

    return LocalGitHistory(s.workspaces_dir / ".history")


def github_identity(s: Settings) -> str | GitHubApp | None:
    """Who the GitHub adapters act as: the token, or the GitHub App installation (Settings allows one of them)."""
    from relaunch.adapters.github.client import identity

    return identity(s)


def tracking_sync(s: Settings) -> TrackingSync | None:
    """Who uploads the jobs' offline W&B runs (spec `tracking.wandb: online`): W&B with relaunch's key, else nobody."""
    key = reveal(s.wandb_api_key)
    if not key:
        return None
    from relaunch.adapters.wandb.sync import WandbSync

    return WandbSync(api_key=key, base_url=s.wandb_base_url)
