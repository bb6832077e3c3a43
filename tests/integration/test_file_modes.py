"""Every file the service creates in its instance folder is 0600, every folder 0700, after a real run."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import requests

from tests.servers.service import MailshiftService

_CSV = b"EmailAddress,UserName,Password\nterrya@contoso.edu,terry.adams,Pa$$word1\n"


def _modes(root: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def test_instance_files_are_0600_and_folders_0700_after_a_service_run(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    with MailshiftService(instance, https=True) as service:
        auth = (service.user, service.password)
        (service.import_folder / "users.csv").write_bytes(_CSV)
        made = requests.post(f"{service.url}/api/v1/cmdlets/New-MigrationEndpoint/invoke", auth=auth, timeout=30,
                             json={"parameters": {"Name": "src", "IMAP": True, "RemoteServer": "imap.contoso.edu",
                                                  "SkipVerification": True}})
        assert made.status_code == 200 and not made.json()["errors"], made.text
        batch = requests.post(f"{service.url}/api/v1/cmdlets/New-MigrationBatch/invoke", auth=auth, timeout=30,
                              json={"parameters": {"Name": "b1", "SourceEndpoint": "src",
                                                   "CSVData": base64.b64encode(_CSV).decode()}})
        assert batch.status_code == 200 and not batch.json()["errors"], batch.text
        running = _modes(instance)
    after = _modes(instance)
    for name in ("mailshift.db", "mailshift.db-wal", "mailshift.db-shm", "secret.key", "admins.json",
                 "tls/service.key", "tls/service.crt", "import", "tls"):
        assert name in running, f"{name} was not made: {sorted(running)}"
    for modes in (running, after):
        wrong = {name: oct(mode) for name, mode in modes.items()
                 if mode != (0o700 if (instance / name).is_dir() else 0o600) and name != "import/users.csv"}
        assert wrong == {}
