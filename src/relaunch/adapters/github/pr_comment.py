"""The pull request report comment through PyGithub: one per pipeline and pull request, edited in place.

The comment is found again by listing the pull request's comments (oldest first) for one that carries the pipeline's
marker (domain/pr_report) AND was written by relaunch's own identity: the token's user (GET /user), or the GitHub
App (`performed_via_github_app`). A human comment that copies the marker is never edited. Nothing is remembered
between processes, so a retry after a timeout (the POST had landed) finds the comment instead of posting twice.

Two processes notifying at once may both find nothing and both post: after posting, the listing is read again and the
oldest of relaunch's marked comments wins; the others are deleted and the winner gets the newest body. A comment a
human deleted is posted again on the next verdict; one deleted between the listing and the edit (404) too. A human
who edits the marker out takes the comment over: relaunch posts a new one.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from itertools import islice
from typing import Any

from relaunch.adapters.github.client import Credentials, GitHubApp
from relaunch.domain.pr_report import is_report, pushed_at

log = logging.getLogger(__name__)

SCAN_LIMIT = 300  # comments read per listing (10 pages): relaunch's is among the oldest, posted at the first push


@dataclass(frozen=True)
class Author:
    """Who wrote a comment, as far as relaunch tells its own apart: an App's id, else a user's login."""

    login: str | None = None
    app_id: int | None = None

    def wrote(self, comment: Any) -> bool:
        app = comment.performed_via_github_app
        if self.app_id is not None:
            return app is not None and app.id == self.app_id
        login = comment.user.login if comment.user is not None else None
        return app is None and self.login is not None and str(login or "").lower() == self.login.lower()


def author_of(comment: Any) -> Author:
    """The identity a comment relaunch just posted shows: who relaunch is, when GET /user could not say."""
    app = comment.performed_via_github_app
    return Author(app_id=int(app.id)) if app is not None else Author(login=str(comment.user.login))


class ReportComments:
    """Creates or edits the report comment of a pipeline on a pull request."""

    def __init__(self, who: Credentials) -> None:
        self._me: Author | None = Author(app_id=int(who.app_id)) if isinstance(who, GitHubApp) else None
        self._lock = threading.Lock()  # one process never races itself; other processes settle after posting

    def post(self, github: Any, repo: Any, pipeline: str, number: int, body: str) -> None:
        """Edit this pipeline's report comment on pull request `number`, or post it; raises PyGithub's errors."""
        issue = repo.get_issue(number)  # lazy: no request
        with self._lock:
            me = self._identity(github)
            found = self._ours(issue, pipeline, me) if me is not None else []
            if found and _newer(found[0].body, body):
                log.info("GitHub: PR #%d already shows a newer push's report of %s: left as it is", number, pipeline)
                return
            if found and _edited(found[0], body):
                return
            created = issue.create_comment(body)
            self._me = me or author_of(created)
            self._settle(issue, pipeline, self._me, created, body)

    def _identity(self, github: Any) -> Author | None:
        """relaunch's identity: the App's, or the token's user (GET /user, once); None when GitHub will not say."""
        if self._me is None:
            try:
                self._me = Author(login=str(github.get_user().login))
            except Exception as exc:  # an installation token passed as a plain token: 403 on GET /user
                log.info("GitHub: GET /user refused (%s): relaunch learns its identity from its comment", _status(exc))
        return self._me

    def _ours(self, issue: Any, pipeline: str, me: Author) -> list[Any]:
        listed = islice(issue.get_comments(), SCAN_LIMIT)
        return sorted((c for c in listed if is_report(c.body, pipeline) and me.wrote(c)), key=lambda c: c.id)

    def _settle(self, issue: Any, pipeline: str, me: Author, created: Any, body: str) -> None:
        """After posting: if another of relaunch's report comments is older, keep that one (with this body)."""
        ours = self._ours(issue, pipeline, me)
        keep = ours[0] if ours else created
        for extra in ours[1:]:
            try:
                extra.delete()
            except Exception as exc:  # already deleted by the process that raced this one
                if _status(exc) != 404:
                    raise
        if keep.id != created.id and not _edited(keep, body):
            issue.create_comment(body)  # the winner was deleted meanwhile: very unlikely, and one post is safe


def _newer(shown: str | None, body: str) -> bool:
    """Whether the comment shows the report of a run that began after this one (a late verdict of an older push)."""
    then, now = pushed_at(shown), pushed_at(body)
    return then is not None and now is not None and then > now


def _edited(comment: Any, body: str) -> bool:
    """Edit a comment; False if it is gone (a human deleted it after the listing)."""
    if comment.body == body:
        return True  # a retry: nothing changed
    try:
        comment.edit(body)
    except Exception as exc:
        if _status(exc) == 404:
            return False
        raise
    return True


def _status(exc: Exception) -> object:
    return getattr(exc, "status", type(exc).__name__)
