"""Resumable uploads as the JSON API runs them: a POST opens a session, PUTs send chunks, the last one completes it."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from typing import Any

from relaunch.emulated.gcs_wire import Reply, error


@dataclass
class Session:
    """One upload under way: the object it writes, the metadata and query of its opening request, the bytes so far."""

    key: tuple[str, str]
    metadata: dict[str, Any]
    query: dict[str, list[str]]
    data: bytes = b""


class ResumableUploads:
    """The open sessions, by upload_id."""

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        self._ids = itertools.count()
        self._lock = threading.Lock()

    def open(self, url: str, session: Session) -> Reply:
        """The answer to the opening POST: the session's URI in `Location` (`url` is the POST's, without a query)."""
        with self._lock:
            upload_id = f"upload-{next(self._ids)}"
            self._sessions[upload_id] = session
        return Reply(200, headers={"Location": f"{url}?uploadType=resumable&upload_id={upload_id}"})

    def add(self, upload_id: str, content_range: str, body: bytes) -> Session | Reply:
        """Take one PUT (`Content-Range: bytes A-B/TOTAL`, TOTAL `*` until the last): the complete session, or a reply.

        A chunk starting before the bytes received so far replaces them from there (a client resending after a 308).
        """
        with self._lock:
            session = self._sessions.get(upload_id)
            if session is None:
                return error(404, f"No such upload: {upload_id}", reason="notFound")
            sent, _, total = content_range.removeprefix("bytes ").partition("/")
            start = sent.partition("-")[0]
            if start.isdigit():
                session.data = session.data[: int(start)] + body
            if total == "*" or (total.isdigit() and len(session.data) < int(total)):
                done = len(session.data)
                return Reply(308, headers={"Range": f"bytes=0-{done - 1}"} if done else {})
            del self._sessions[upload_id]
            return session
