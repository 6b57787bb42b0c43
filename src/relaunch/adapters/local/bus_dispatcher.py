"""Delivers the local bus's messages by HTTP POST, exactly as Eventarc delivers Pub/Sub messages to a function."""

from __future__ import annotations

import base64
import json
import logging
import random
import sqlite3
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from datetime import UTC, datetime
from pathlib import Path

import requests

from relaunch.adapters.local import wake
from relaunch.adapters.local.bus import SCHEMA, Push, fields_of
from relaunch.adapters.local.sqlite import connect, init_schema, write_transaction

log = logging.getLogger(__name__)

PROJECT = "local"
EVENT_TYPE = "google.cloud.pubsub.topic.v1.messagePublished"
LEASE_MARGIN_S = 5.0  # a lease outlives the longest request it covers
STOP_GRACE_S = 1.5  # how long stop() lets in-flight pushes finish so they are acknowledged

_DUE = "d.state = 'pending' AND d.next_attempt_at <= :now AND d.leased_until <= :now"
_CLAIM = f"""
SELECT d.message_id, d.subscription, d.attempts + 1 AS attempt, s.push_url,
       m.topic, m.data, m.attributes, m.published_at
FROM bus_deliveries d JOIN bus_messages m ON m.id = d.message_id JOIN bus_subscriptions s ON s.name = d.subscription
WHERE {_DUE} ORDER BY d.next_attempt_at, d.message_id LIMIT :n
"""


def rfc3339(ts: float) -> str:
    """A UNIX timestamp as Pub/Sub writes it: UTC, milliseconds, 'Z'."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def eventarc_request(push: Push) -> tuple[dict[str, str], bytes]:
    """Headers and body of the binary-mode CloudEvent Eventarc POSTs for a Pub/Sub message."""
    published = rfc3339(push.published_at)
    message = {
        "@type": "type.googleapis.com/google.pubsub.v1.PubsubMessage",
        "data": base64.b64encode(json.dumps(push.data).encode()).decode(),
        "attributes": push.attributes,
        "messageId": push.message_id,
        "message_id": push.message_id,
        "publishTime": published,
        "publish_time": published,
    }
    body = {"message": message, "subscription": f"projects/{PROJECT}/subscriptions/{push.subscription}"}
    headers = {
        "ce-id": push.message_id,
        "ce-specversion": "1.0",
        "ce-type": EVENT_TYPE,
        "ce-source": f"//pubsub.googleapis.com/projects/{PROJECT}/topics/{push.topic}",
        "ce-time": published,
        "Content-Type": "application/json",
    }
    return headers, json.dumps(body).encode()


class BusDispatcher:
    """Pushes due deliveries to their subscriptions with retries, backoff, leases and dead-lettering."""

    def __init__(
        self,
        path: Path,
        *,
        min_backoff: float = 0.1,
        max_backoff: float = 10.0,
        max_attempts: int = 8,
        workers: int = 4,
        poll_interval: float = 0.02,
        request_timeout: float = 60.0,
    ) -> None:
        self.path = Path(path)
        self.min_backoff, self.max_backoff, self.max_attempts = min_backoff, max_backoff, max_attempts
        self.workers, self.poll_interval, self.request_timeout = workers, poll_interval, request_timeout
        init_schema(self.path, SCHEMA)
        self._stopping = threading.Event()
        self._wake = threading.Event()  # this process's wake-ups (a push done, stop); other processes': _wakes
        self._wakes: wake.WakeSocket | None = None
        self._thread: threading.Thread | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._sessions: list[requests.Session] = []

    def __enter__(self) -> BusDispatcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start delivering in the background (no-op if running)."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._wakes = wake.WakeSocket.bind(wake.wake_path(self.path))  # None: polling alone, as before
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="relaunch-bus-push")
        self._thread = threading.Thread(target=self._run, name="relaunch-bus", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop delivering; pushes still in flight after a short grace are redelivered once their lease expires."""
        if self._thread is None or self._executor is None:
            return
        self._stopping.set()
        self._poke()
        self._thread.join(STOP_GRACE_S + 0.4)
        if self._wakes is not None and not self._thread.is_alive():
            self._wakes.close()
            self._wakes = None
        self._executor.shutdown(wait=False, cancel_futures=True)
        for session in self._sessions:
            session.close()
        self._thread, self._executor, self._sessions = None, None, []

    def backoff(self, attempt: int) -> float:
        """Delay before retrying after failed attempt number `attempt` (1-based), with up to 10% jitter."""
        delay = self.min_backoff * 2 ** (attempt - 1) * random.uniform(1.0, 1.1)
        return float(min(self.max_backoff, delay))

    def _run(self) -> None:
        conn = connect(self.path)
        in_flight: set[Future[tuple[Push, str | None]]] = set()
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                if not self._step(conn, in_flight):
                    self._pause()
            wait_futures(in_flight, timeout=STOP_GRACE_S)
            self._settle(conn, in_flight)
        finally:
            conn.close()

    def _pause(self) -> None:
        """Until a publish (any process), a finished push or stop wakes the loop, or the poll interval passed."""
        if self._wakes is None:
            self._wake.wait(self.poll_interval)
            return
        if not self._wake.is_set():
            wake.wait([self._wakes.fileno()], self.poll_interval, self._wake.wait)
        self._wakes.drain()

    def _poke(self) -> None:
        self._wake.set()
        if self._wakes is not None:
            wake.nudge(self._wakes.path)

    def _step(self, conn: sqlite3.Connection, in_flight: set[Future[tuple[Push, str | None]]]) -> bool:
        """Record finished pushes and start due ones; True if anything was started."""
        try:
            self._settle(conn, in_flight)
            pushes = self._claim(conn, self.workers - len(in_flight))
        except Exception:  # a locked or broken database must not kill the dispatcher; the next poll retries
            log.exception("bus dispatcher: cannot reach %s", self.path)
            return False
        executor = self._executor
        assert executor is not None
        for push in pushes:
            future = executor.submit(self._push, push)
            future.add_done_callback(lambda _: self._poke())
            in_flight.add(future)
        return bool(pushes)

    def _claim(self, conn: sqlite3.Connection, limit: int) -> list[Push]:
        """Lease up to `limit` due deliveries so no other worker or dispatcher pushes them meanwhile."""
        now = time.time()
        due = f"SELECT 1 FROM bus_deliveries d WHERE {_DUE} LIMIT 1"
        if limit <= 0 or conn.execute(due, {"now": now}).fetchone() is None:
            return []  # the cheap read above spares the write lock on every idle poll
        with write_transaction(conn):
            rows = conn.execute(_CLAIM, {"now": now, "n": limit}).fetchall()
            conn.executemany(
                "UPDATE bus_deliveries SET leased_until = ?, attempts = attempts + 1"
                " WHERE message_id = ? AND subscription = ?",
                [(now + self.request_timeout + LEASE_MARGIN_S, r["message_id"], r["subscription"]) for r in rows],
            )
        return [Push(**fields_of(row)) for row in rows]

    def _push(self, push: Push) -> tuple[Push, str | None]:
        """POST the delivery; the error that makes it a failure, or None on a 2xx."""
        headers, body = eventarc_request(push)
        try:
            response = self._session().post(push.push_url, data=body, headers=headers, timeout=self.request_timeout)
        except Exception as exc:  # any failure to deliver is retried, never lost
            return push, f"{type(exc).__name__}: {exc}"
        if 200 <= response.status_code < 300:
            return push, None
        return push, f"HTTP {response.status_code}: {response.text[:200]}"

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            self._sessions.append(session)
        return session

    def _settle(self, conn: sqlite3.Connection, in_flight: set[Future[tuple[Push, str | None]]]) -> None:
        """Acknowledge finished pushes, or schedule their retry, or dead-letter them."""
        for future in [f for f in in_flight if f.done()]:
            in_flight.discard(future)
            if future.cancelled():
                continue  # never started: its lease expires and it is delivered again
            push, error = future.result()
            key = (int(push.message_id), push.subscription)
            if error is None:
                conn.execute("DELETE FROM bus_deliveries WHERE message_id = ? AND subscription = ?", key)
                continue
            dead = push.attempt >= self.max_attempts
            if dead:
                log.warning("bus: dead-lettered %s for %s after %d attempts: %s", *key, push.attempt, error)
            conn.execute(
                "UPDATE bus_deliveries SET state = ?, leased_until = 0, next_attempt_at = ?, last_error = ?"
                " WHERE message_id = ? AND subscription = ?",
                ("dead" if dead else "pending", time.time() + self.backoff(push.attempt), error, *key),
            )
