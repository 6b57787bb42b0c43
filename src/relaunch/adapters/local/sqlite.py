"""SQLite plumbing shared by the embedded components: WAL files, explicit write transactions, per-thread connections."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT_S = 5.0
CHECKPOINT_INTERVAL_S = 1.0
WAL_SIZE_LIMIT = 16 * 1024 * 1024


class _Connection(sqlite3.Connection):
    """A plain connection that, unlike sqlite3.Connection, can be weakly referenced and carries its files' locks."""

    write_locks: tuple[threading.Lock, ...] = ()


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
    conn.write_locks = (_writer_lock(path),)
    return conn


def attach(conn: sqlite3.Connection, schema: str, path: Path) -> None:
    """Attach another WAL file to `conn` under `schema`: one write transaction then commits to both files.

    Its writes take that file's in-process lock too (after the main file's: every writer takes them in that order).
    In WAL mode each file commits atomically on its own, the main file first; see SqliteRunStore's outbox for why
    that order is the safe one.
    """
    conn.execute("ATTACH DATABASE ? AS " + schema, (str(path),))
    conn.execute(f"PRAGMA {schema}.synchronous = NORMAL")
    conn.execute(f"PRAGMA {schema}.journal_size_limit = {WAL_SIZE_LIMIT}")
    conn.write_locks = (*conn.write_locks, _writer_lock(path))  # type: ignore[attr-defined]
    _CHECKPOINTER.watch(path, conn)  # its commits never checkpoint either (wal_autocheckpoint is per connection)


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT, rolled back on error; taking the write lock first avoids lock-upgrade deadlocks.

    Writers of one process take the file's in-process lock first, so only writers of other processes ever wait in
    SQLite's busy handler.
    """
    locks: tuple[threading.Lock, ...] = getattr(conn, "write_locks", ())
    for lock in locks:
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
        for lock in reversed(locks):
            lock.release()


def init_schema(path: Path, schema: str) -> None:
    """Create the parent directory, switch the file to WAL and create the tables if missing."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _private_file(path)
    conn = connect(path)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(f"BEGIN IMMEDIATE;\n{schema}\nCOMMIT;")
    finally:
        conn.close()


def _private_file(path: Path) -> None:
    """Make the database 0600 before SQLite opens it: its -wal and -shm files are then created with the same mode."""
    try:
        # O_EXCL: never open and close a file SQLite may hold in this process (closing drops its POSIX locks).
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            os.chmod(name, 0o600)  # one made by an older version was 0644
        except (FileNotFoundError, PermissionError):
            continue


class _Checkpointer:
    """One thread per process copying the WAL of every file with a writer back into the database each second.

    Writers run with wal_autocheckpoint off, so no commit ever waits for a checkpoint's fsync; PASSIVE never blocks
    them. A file is watched while one of its writer connections is alive (weakly held: closing or dropping them
    ends that); a file attached to another's writer has two (its own bus, and the store's inbox writer).
    """

    def __init__(self) -> None:
        self._writers: dict[str, weakref.WeakSet[sqlite3.Connection]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, path: Path, writer: sqlite3.Connection) -> None:
        with self._lock:
            self._writers.setdefault(str(path), weakref.WeakSet()).add(writer)
            if self._thread is None or not self._thread.is_alive():  # a forked child has no thread
                self._thread = threading.Thread(target=self._run, name="sqlite-checkpoints", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        conns: dict[str, sqlite3.Connection] = {}
        while True:
            time.sleep(CHECKPOINT_INTERVAL_S)
            with self._lock:
                live = [path for path, writers in self._writers.items() if any(_is_open(w) for w in list(writers))]
            for path in set(conns) - set(live):
                conns.pop(path).close()
            for path in live:
                try:
                    conn = conns.get(path) or conns.setdefault(path, connect(Path(path)))
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error:  # busy, or the file is gone: the next tick tries again
                    continue


def _is_open(conn: sqlite3.Connection) -> bool:
    try:
        conn.total_changes  # noqa: B018 - raises ProgrammingError once the connection is closed
    except sqlite3.ProgrammingError:
        return False
    return True


_CHECKPOINTER = _Checkpointer()


class ConnectionPool:
    """One connection per thread and process (a connection must not cross a fork); closed with its thread."""

    def __init__(self, path: Path, attach: Mapping[str, Path] | None = None) -> None:
        """`attach`: other files the writer attaches, by schema name (its transactions then span them)."""
        self._path = path
        self._attach = dict(attach or {})
        self._local = threading.local()
        self._open: weakref.WeakSet[sqlite3.Connection] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._generation = 0
        self._writer: sqlite3.Connection | None = None
        self._writer_owner: tuple[int, int] | None = None

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

    def writer(self) -> sqlite3.Connection:
        """The one connection this process's write transactions on the file share (they queue on its write lock).

        One writer keeps one warm page cache: a connection per thread would find its cache stale after every other
        thread's commit and read the B-tree pages again, which under concurrent webhooks cost more than the writes.
        """
        owner = (os.getpid(), self._generation)
        with self._lock:
            if self._writer is None or self._writer_owner != owner:
                self._writer, self._writer_owner = connect(self._path), owner
                # Its commits never checkpoint (the fsync would land on a webhook's answer): a thread does.
                self._writer.execute("PRAGMA wal_autocheckpoint = 0")
                self._writer.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")  # a burst's WAL shrinks back
                self._open.add(self._writer)
                _CHECKPOINTER.watch(self._path, self._writer)
                for schema, other in self._attach.items():
                    attach(self._writer, schema, other)
            return self._writer

    def close(self) -> None:
        """Close every connection opened so far; later calls open new ones."""
        with self._lock:
            self._writer = None
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
        """A write transaction on this process's writer connection."""
        with write_transaction(self._pool.writer()) as conn:
            yield conn

    def close(self) -> None:
        """Close every connection opened so far."""
        self._pool.close()
