"""SQLite plumbing shared by the embedded components: WAL files, explicit write transactions, per-thread connections."""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT_S = 5.0


class _Connection(sqlite3.Connection):
    """A plain connection that, unlike sqlite3.Connection, can be weakly referenced and carries its file's lock."""

    write_lock: threading.Lock | None = None


_writer_locks: dict[tuple[int, str], threading.Lock] = {}
_writer_locks_guard = threading.Lock()


def _writer_lock(path: Path) -> threading.Lock:
    """One lock per database file and process: this process's writers queue on it instead of on SQLite's busy
    handler, which sleeps in steps of up to 100 ms and made the webhook's p99 latency under concurrency."""
    key = (os.getpid(), str(Path(path).resolve()))
    with _writer_locks_guard:
        return _writer_locks.setdefault(key, threading.Lock())


def connect(path: Path) -> sqlite3.Connection:
    """Open an autocommit connection (transactions are explicit) that waits up to 5 s for a lock."""
    conn = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False, factory=_Connection
    )
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    conn.execute("PRAGMA synchronous = NORMAL")  # durable across crashes of the process in WAL mode
    conn.write_lock = _writer_lock(path)
    return conn


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT, rolled back on error; taking the write lock first avoids lock-upgrade deadlocks.

    Writers of one process take the file's in-process lock first, so only writers of other processes ever wait in
    SQLite's busy handler.
    """
    lock = getattr(conn, "write_lock", None)
    if lock is not None:
        lock.acquire()
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        if lock is not None:
            lock.release()


def init_schema(path: Path, schema: str) -> None:
    """Create the parent directory, switch the file to WAL and create the tables if missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(f"BEGIN IMMEDIATE;\n{schema}\nCOMMIT;")
    finally:
        conn.close()


class ConnectionPool:
    """One connection per thread and process (a connection must not cross a fork); closed with its thread."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._local = threading.local()
        self._open: weakref.WeakSet[sqlite3.Connection] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._generation = 0

    def get(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        owner = (os.getpid(), self._generation)
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or self._local.owner != owner:
            conn = connect(self._path)
            self._local.conn, self._local.owner = conn, owner
            with self._lock:
                self._open.add(conn)
        return conn

    def close(self) -> None:
        """Close every connection opened so far; later calls open new ones."""
        with self._lock:
            self._generation += 1
            conns, self._open = list(self._open), weakref.WeakSet()
        for conn in conns:
            conn.close()


class Database:
    """A SQLite file with its schema: pooled connections for reads, `transaction()` for writes."""

    def __init__(self, path: Path, schema: str) -> None:
        self.path = Path(path)
        init_schema(self.path, schema)
        self._pool = ConnectionPool(self.path)

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection (autocommit: each statement is its own transaction)."""
        yield self._pool.get()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction on this thread's connection."""
        with write_transaction(self._pool.get()) as conn:
            yield conn

    def close(self) -> None:
        """Close every connection opened so far."""
        self._pool.close()
