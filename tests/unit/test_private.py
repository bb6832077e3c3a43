"""Instance files 0600 and folders 0700, whatever the umask; an older 0644 database narrowed when opened."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.private import private_file, private_folder
from engine.store import Store


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_folders_and_parents_are_made_0700(tmp_path: Path, open_umask: None) -> None:
    made = private_folder(tmp_path / "a" / "b")
    assert (mode(tmp_path / "a"), mode(made)) == (0o700, 0o700)


def test_files_are_made_0600_and_existing_ones_narrowed(tmp_path: Path, open_umask: None) -> None:
    (tmp_path / "old").write_text("kept")
    assert mode(tmp_path / "old") == 0o644
    assert mode(private_file(tmp_path / "new")) == 0o600
    assert mode(private_file(tmp_path / "old")) == 0o600 and (tmp_path / "old").read_text() == "kept"


def test_the_state_database_and_its_wal_files_are_0600(tmp_path: Path, open_umask: None) -> None:
    older = tmp_path / "older.db"
    sqlite3.connect(older).close()
    assert mode(older) == 0o644
    for path in (tmp_path / "state" / "new.db", older):
        store = Store(path)
        try:
            made = {p.name: mode(p) for p in path.parent.iterdir() if p.name.startswith(path.name)}
        finally:
            store.close()
        assert set(made) == {path.name, f"{path.name}-wal", f"{path.name}-shm"}
        assert set(made.values()) == {0o600}
    assert mode(tmp_path / "state") == 0o700
