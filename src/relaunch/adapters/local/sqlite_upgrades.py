"""Bringing a SQLite file made by an older relaunch to today's schema, its rows kept: each step checks whether it is
needed, so running them on every open costs a few catalogue reads, inside the opener's write transaction (two
processes opening one old file upgrade it once)."""

from __future__ import annotations

import sqlite3


def columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def table_sql(conn: sqlite3.Connection, table: str) -> str:
    """The CREATE TABLE statement the file holds for `table` ('' if there is none)."""
    row = conn.execute("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?", (table,)).fetchone()
    return str(row[0]) if row else ""


def rebuild(conn: sqlite3.Connection, table: str, create: str, indexes: list[str]) -> None:
    """Recreate `table` as `create` says (its CREATE TABLE IF NOT EXISTS, same columns in the same order), every row
    copied with its rowid or key, then its `indexes` (CREATE INDEX statements; dropping the old table dropped them)."""
    conn.execute(create.replace(f"CREATE TABLE IF NOT EXISTS {table} ", f"CREATE TABLE {table}_rebuilt ", 1))
    conn.execute(f"INSERT INTO {table}_rebuilt SELECT * FROM {table}")
    conn.execute(f"DROP TABLE {table}")
    conn.execute(f"ALTER TABLE {table}_rebuilt RENAME TO {table}")
    for index in indexes:
        conn.execute(index)


def drop_autoincrement(conn: sqlite3.Connection, table: str, create: str, indexes: list[str]) -> None:
    """Rebuild `table` with a plain INTEGER PRIMARY KEY if it was made with AUTOINCREMENT.

    AUTOINCREMENT only differs once the highest rowid has been deleted (it never hands that id out again); for a table
    no row of which is ever deleted, the next id is max + 1 either way, and every insert no longer writes
    sqlite_sequence's page too. The rows keep their ids, so cursors over them (the story feed's) stay valid.
    """
    if "AUTOINCREMENT" in table_sql(conn, table).upper():
        rebuild(conn, table, create, indexes)


def without_rowid(conn: sqlite3.Connection, table: str, create: str, indexes: list[str]) -> None:
    """Rebuild `table` as WITHOUT ROWID (one B-tree, its primary key's, instead of a table and its key's index)."""
    if "WITHOUT ROWID" not in table_sql(conn, table).upper():
        rebuild(conn, table, create, indexes)
