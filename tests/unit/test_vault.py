"""Passwords at rest."""

import os
import stat
from pathlib import Path

import pytest

from engine.errors import StateError
from engine.vault import KEY_FILE, Vault


def test_key_is_created_private_and_reused(tmp_path: Path) -> None:
    vault = Vault(tmp_path / "instance")
    token = vault.seal("Pa$$word1")
    assert b"Pa$$word1" not in token
    mode = stat.S_IMODE(os.stat(tmp_path / "instance" / KEY_FILE).st_mode)
    assert mode == 0o600
    assert Vault(tmp_path / "instance").open(token) == "Pa$$word1"


def test_token_from_another_key_is_refused_loudly(tmp_path: Path) -> None:
    token = Vault(tmp_path / "a").seal("secret")
    with pytest.raises(StateError, match="cannot be decrypted"):
        Vault(tmp_path / "b").open(token)


def test_damaged_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).write_text("not a key")
    with pytest.raises(StateError, match="not a valid Mailshift key file"):
        Vault(tmp_path)
