"""The embedded stack's state folder: its own secrets in a private folder, older layouts migrated and tightened."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from relaunch.adapters.local.sqlite import Database
from relaunch.adapters.local.state_folder import make_private, with_local_secrets
from relaunch.settings import Settings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The umask most users have: files 0644 and folders 0755 unless the code asks for less."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def test_the_stack_makes_its_webhook_secrets_in_a_private_folder(tmp_path: Path, open_umask: None) -> None:
    settings = with_local_secrets(Settings(home=tmp_path / "home"))
    value = settings.webhook_secret()
    path = tmp_path / "home" / "secrets" / "github_webhook_secret"
    assert value and path.read_text() == value and mode(path) == 0o600 and mode(path.parent) == 0o700
    assert not (tmp_path / "home" / "github_webhook_secret").exists()
    assert with_local_secrets(Settings(home=tmp_path / "home")).webhook_secret() == value  # made once


def test_a_secret_where_older_versions_kept_it_moves_into_the_secrets_folder(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "github_webhook_secret").write_text("the-old-one\n")  # what GitHub's webhook is configured with
    (home / "wandb_webhook_token").write_text("old-token")
    settings = with_local_secrets(Settings(home=home))
    assert settings.webhook_secret() == "the-old-one"
    assert settings.wandb_webhook_token is not None and settings.wandb_webhook_token.get_secret_value() == "old-token"
    assert (home / "secrets" / "github_webhook_secret").read_text() == "the-old-one"
    assert not (home / "github_webhook_secret").exists() and not (home / "wandb_webhook_token").exists()


def test_databases_and_their_wal_files_are_private(tmp_path: Path, open_umask: None) -> None:
    db = Database(tmp_path / "state" / "x.db", "CREATE TABLE IF NOT EXISTS t (v TEXT);")
    with db.transaction() as conn:
        conn.execute("INSERT INTO t VALUES ('x')")
    files = [tmp_path / "state" / name for name in ("x.db", "x.db-wal", "x.db-shm")]
    assert {f.name: oct(mode(f)) for f in files} == {f.name: oct(0o600) for f in files}
    db.close()


def test_a_database_made_by_an_older_version_is_tightened(tmp_path: Path, open_umask: None) -> None:
    Database(tmp_path / "x.db", "CREATE TABLE IF NOT EXISTS t (v TEXT);").close()
    os.chmod(tmp_path / "x.db", 0o644)
    Database(tmp_path / "x.db", "CREATE TABLE IF NOT EXISTS t (v TEXT);").close()
    assert mode(tmp_path / "x.db") == 0o600


def test_a_home_made_before_is_closed_to_other_users(tmp_path: Path, open_umask: None) -> None:
    home = tmp_path / "home"
    (home / "logs").mkdir(parents=True)
    (home / "stack.json").write_text("{}")
    make_private(home)
    assert (mode(home), mode(home / "logs"), mode(home / "stack.json")) == (0o700, 0o700, 0o600)
