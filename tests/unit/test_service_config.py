"""Service settings layering and administrator accounts (files in a temp folder, no servers)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from engine.errors import ConfigurationError
from engine.imap import ImapEndpoint
from engine.scheduler import TargetSettings
from engine.service import MigrationService
from shim.accounts import Accounts
from shim.app import create_app
from shim.cli import main
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


@pytest.mark.parametrize(("settings", "message"), [
    ({"TARGET_MAILDIR": "/srv/mail/Maildir"}, r"TARGET_MAILDIR '/srv/mail/Maildir' has no \{EmailAddress\}"),
    ({"TARGET_IMAP_HOST": "imap.contoso.edu", "TARGET_IMAP_USER": "master"},
     r"TARGET_IMAP_USER and TARGET_IMAP_AUTHZID \('master', None\) have no \{EmailAddress\}"),
    ({"TARGET_IMAP_HOST": "imap.contoso.edu", "TARGET_IMAP_USER": "admin", "TARGET_IMAP_AUTHZID": "shared"},
     r"\('admin', 'shared'\) have no \{EmailAddress\}.*one account"),
])
def test_a_target_every_mailbox_would_share_is_refused_when_the_settings_load(
        tmp_path: Path, settings: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_config({"INSTANCE": str(tmp_path), **settings}, environ={})
    (tmp_path / "mailshift.toml").write_text("".join(f'{k.lower()} = "{v}"\n' for k, v in settings.items()))
    with pytest.raises(ConfigurationError, match=message):
        load_config({"INSTANCE": str(tmp_path)}, environ={})


def test_per_mailbox_targets_load(tmp_path: Path) -> None:
    for settings in ({"TARGET_MAILDIR": "/srv/mail/{EmailAddress}/Maildir"},
                     {"TARGET_IMAP_HOST": "imap.contoso.edu", "TARGET_IMAP_USER": "{EmailAddress}*master"},
                     {"TARGET_IMAP_HOST": "imap.contoso.edu", "TARGET_IMAP_USER": "master",
                      "TARGET_IMAP_AUTHZID": "{EmailAddress}"},
                     # An IMAP target wins: the Maildir setting is not used, so it is not checked.
                     {"TARGET_IMAP_HOST": "imap.contoso.edu", "TARGET_IMAP_USER": "{EmailAddress}*master",
                      "TARGET_MAILDIR": "/unused"}):
        assert load_config({"INSTANCE": str(tmp_path), **settings}, environ={})["INSTANCE"] == str(tmp_path)


def test_the_service_refuses_a_shared_target_before_any_batch_can_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"the target Maildir path '/srv/mail' has no \{EmailAddress\}"):
        MigrationService(tmp_path / "instance", target=TargetSettings(maildir="/srv/mail"), run_scheduler=False)
    with pytest.raises(ConfigurationError, match="every mailbox of a batch would be copied into this one account"):
        TargetSettings(imap=ImapEndpoint(host="imap.contoso.edu", user="master", password="x"))
    with pytest.raises(ConfigurationError, match="every mailbox of a batch would be written into this one Maildir"):
        create_app({"INSTANCE": str(tmp_path / "app"), "TARGET_MAILDIR": str(tmp_path / "one"),
                    "RUN_SCHEDULER": False})


def test_the_worker_refuses_a_shared_maildir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["worker", "--instance", str(tmp_path / "instance"), "--target-maildir", str(tmp_path / "Maildir")])
    assert exited.value.code == 2
    assert "has no {EmailAddress}: every mailbox of a batch would be written into this one Maildir" in capsys.readouterr().err
    assert not (tmp_path / "instance" / "mailshift.db").exists()
