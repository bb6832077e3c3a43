"""Service settings layering and administrator accounts (files in a temp folder, no servers)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from engine.errors import ConfigurationError
from shim.accounts import Accounts
from shim.config import load_config, smtp_settings, target_settings


def test_settings_are_layered_defaults_file_test_mapping_environment(tmp_path: Path) -> None:
    instance = tmp_path / "inst"
    instance.mkdir()
    (instance / "mailshift.toml").write_text('port = 6000\nhost = "0.0.0.0"\nsmtp_host = "relay.contoso.edu"\n')
    config = load_config({"INSTANCE": str(instance), "HOST": "127.0.0.2"},
                         environ={"MAILSHIFT_SMTP_PORT": "2525", "MAILSHIFT_ALLOW_REMOTE_HTTP": "true"})
    assert (config["PORT"], config["HOST"], config["SMTP_HOST"], config["SMTP_PORT"]) == (6000, "127.0.0.2",
                                                                                          "relay.contoso.edu", 2525)
    assert config["ALLOW_REMOTE_HTTP"] is True
    assert config["IMPORT_FOLDER"] == str(instance / "import")
    smtp = smtp_settings(config, environ={})
    assert smtp is not None and (smtp.host, smtp.port, smtp.sender) == ("relay.contoso.edu", 2525,
                                                                        "mailshift@relay.contoso.edu")
    assert target_settings(config, environ={}) is None  # the embedded Maildir default


def test_bad_settings_are_refused_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "mailshift.toml").write_text("prot = 5985\n")
    with pytest.raises(ConfigurationError, match="unknown settings PROT"):
        load_config({"INSTANCE": str(tmp_path)}, environ={})
    with pytest.raises(ConfigurationError, match="MAILSHIFT_PORT='http': use a number"):
        load_config({"INSTANCE": str(tmp_path / "other")}, environ={"MAILSHIFT_PORT": "http"})
    config = load_config({"INSTANCE": str(tmp_path / "t"), "TARGET_IMAP_HOST": "imap.contoso.edu",
                          "TARGET_IMAP_USER": "{EmailAddress}*master"}, environ={})
    with pytest.raises(ConfigurationError, match="MAILSHIFT_TARGET_PASSWORD, which is not set"):
        target_settings(config, environ={})
    target = target_settings(config, environ={"MAILSHIFT_TARGET_PASSWORD": "s3cret"})
    assert target is not None and target.imap is not None and target.imap.user == "{EmailAddress}*master"


def test_accounts_store_only_salted_hashes(tmp_path: Path) -> None:
    accounts = Accounts(tmp_path)
    accounts.set("admin", "correct horse battery", email="admin@contoso.edu")
    stored = (tmp_path / "admins.json").read_text()
    assert "correct horse battery" not in stored and "admin@contoso.edu" in stored
    assert stat.S_IMODE((tmp_path / "admins.json").stat().st_mode) == 0o600
    assert accounts.verify("admin", "correct horse battery") is not None
    assert accounts.verify("admin", "correct horse batterY") is None
    assert accounts.verify("nobody", "correct horse battery") is None
    # Another process changes the password: the old one stops working at once.
    other = Accounts(tmp_path)
    other.set("admin", "a different passphrase")
    data = json.loads((tmp_path / "admins.json").read_text())
    assert data["admin"]["email"] == "admin@contoso.edu"
    import os
    os.utime(tmp_path / "admins.json", (1, 1))  # make the change visible even within the same mtime tick
    assert accounts.verify("admin", "correct horse battery") is None
    assert accounts.verify("admin", "a different passphrase") is not None
    with pytest.raises(ConfigurationError, match="at least 12 characters"):
        accounts.set("admin", "short")
    accounts.remove("admin")
    assert accounts.names() == []
