"""Slack notifier: posts gate verdicts, finished rollouts and failures to an incoming webhook as Block Kit.

Never raises: a failed post is logged, without the webhook URL (the URL is the credential). The post goes through
the standard library rather than requests because urllib3 logs every request line, path included, at DEBUG.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from relaunch.domain.gitnames import repo_problem
from relaunch.domain.model import Notification
from relaunch.domain.pr_report import key_deltas
from relaunch.domain.reporting import run_url, truncate, verdict, worth_announcing

log = logging.getLogger(__name__)

HEADER_LIMIT = 150  # Block Kit: header text
FIELD_LIMIT = 2000  # Block Kit: each section field
SECTION_LIMIT = 3000  # Block Kit: section text
ICONS = {"success": "✅", "failure": "❌", "error": "⚠️", "pending": "⏳"}


class SlackNotifier:
    """Sends the notifications a channel should hear of; implements ports.Notifier."""

    def __init__(self, webhook_url: str, *, timeout_s: float = 5.0, public_url: str | None = None) -> None:
        """`public_url`: where runs can be seen (the dashboard), linked from each message."""
        parts = urlsplit(webhook_url or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("SlackNotifier: webhook_url must be an http(s) URL")  # never echo the secret
        if timeout_s <= 0:
            raise ValueError(f"SlackNotifier: timeout_s must be > 0, got {timeout_s}")
        self._url = SecretStr(webhook_url)
        self._timeout_s = timeout_s
        self._public_url = public_url

    def __repr__(self) -> str:
        return f"SlackNotifier(webhook_url=**********, timeout_s={self._timeout_s})"

    def notify(self, notification: Notification) -> None:
        """Post the message if the notification is news (see reporting.worth_announcing); log any failure."""
        if not worth_announcing(notification):
            return
        try:
            status, answer = self._post(slack_message(notification, public_url=self._public_url))
        except Exception as exc:  # timeouts, refused connections, DNS: never block the run
            reason = getattr(exc, "reason", None)  # URLError wraps the socket error; neither carries the URL
            detail = type(reason).__name__ if isinstance(reason, BaseException) else type(exc).__name__
            log.warning("Slack post for run %s failed: %s", notification.run_id, detail)
            return
        if status != 200:
            log.warning("Slack refused the post for run %s: HTTP %s %s", notification.run_id, status, answer[:200])

    def _post(self, message: dict[str, Any]) -> tuple[int, str]:
        request = urllib.request.Request(
            self._url.get_secret_value(),
            data=json.dumps(message).encode(),
            headers={"Content-Type": "application/json; charset=utf-8"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                return response.status, response.read(4096).decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:  # a non-2xx answer: Slack says why in plain text
            with exc:
                return exc.code, exc.read(4096).decode("utf-8", "replace")


def slack_message(n: Notification, *, public_url: str | None = None) -> dict[str, Any]:
    """The Block Kit message for a notification: header, facts, the key metrics and the gate's reasons (the pull
    request report's summary), the rollout, and links to the run's page and the pull request."""
    headline = f"{ICONS[n.state]} {n.pipeline}: {verdict(n)}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": truncate(headline, HEADER_LIMIT)}},
        {"type": "section", "fields": _fields(_facts(n))},
    ]
    if n.decision is not None and n.stage == "gate" and (deltas := key_deltas(n.decision)):
        listing = "\n".join(f"• {escape(line)}" for line in deltas)
        blocks.append({"type": "section", "text": _mrkdwn(truncate(f"*Key metrics*\n{listing}", SECTION_LIMIT))})
    if n.reasons:
        listing = "\n".join(f"• {escape(reason)}" for reason in n.reasons)
        blocks.append({"type": "section", "text": _mrkdwn(truncate(f"*Gate reasons*\n{listing}", SECTION_LIMIT))})
    if n.stage == "deploy" and n.endpoint:
        rollout = [("Endpoint", n.endpoint), ("Model version", n.model_version or "not registered")]
        blocks.append({"type": "section", "fields": _fields(rollout)})
    context = escape(n.description) + "".join(f" · <{url}|{escape(label)}>" for url, label in _links(n, public_url))
    blocks.append({"type": "context", "elements": [_mrkdwn(truncate(context, SECTION_LIMIT))]})
    return {"text": truncate(f"{headline}: {escape(n.description)}", SECTION_LIMIT), "blocks": blocks}


def _links(n: Notification, public_url: str | None) -> list[tuple[str, str]]:
    """The run's page, and the pull request: its URL built only from a valid owner/name and a positive number."""
    links = []
    if page := n.target_url or run_url(public_url, n.run_id):
        links.append((page, f"run {n.run_id}"))
    number = n.pr_number
    if isinstance(number, int) and number > 0 and n.repo and repo_problem(n.repo) is None:
        links.append((f"https://github.com/{n.repo}/pull/{number}", f"PR #{number}"))
    return links


def _facts(n: Notification) -> list[tuple[str, str]]:
    commit = (n.sha or "unknown")[:7]
    return [
        ("Trigger", n.trigger_kind + (" (evaluation only)" if n.evaluate_only else "")),
        ("Ref", n.ref or "—"),
        ("Commit", f"{n.repo}@{commit}" if n.repo else commit),
        ("Stage", f"{n.stage}: {n.state}"),
    ]


def _fields(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [_mrkdwn(truncate(f"*{label}*\n{escape(value)}", FIELD_LIMIT)) for label, value in pairs]


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def escape(text: str) -> str:
    """Slack's three control characters, so a reason like "log_loss > 0.5" is shown as written."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
