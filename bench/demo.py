"""``make run``: a demonstration migration with the engine, on a throwaway Dovecot server.

Until the service exists, this is the engine's main job shown end to end: a source IMAP server
holding a sample mailbox (folders with non-ASCII names, flags, a Sent Items folder), a copy
into the Maildir tree ``instance/demo-maildir`` through the ``mailshift sync`` command, new
mail arriving, and the incremental sync that copies only that.
"""

from __future__ import annotations

import datetime
import os
import secrets
import shlex
import shutil
import sys
from pathlib import Path

from engine import cli
from tests.servers.dovecot import DovecotServer, dovecot_missing_message
from tests.servers.mailbox import deliver, fill, make_message

INSTANCE = Path("instance")


def main() -> int:
    """Run the demonstration; returns the exit code of the last sync."""
    missing = dovecot_missing_message()
    if missing:
        print(missing, file=sys.stderr)
        return 2
    maildir, state = INSTANCE / "demo-maildir", INSTANCE / "demo-state.db"
    shutil.rmtree(maildir, ignore_errors=True)
    for leftover in INSTANCE.glob("demo-state.db*"):
        leftover.unlink()
    with DovecotServer(layout="dot") as source:
        password = secrets.token_urlsafe(12)
        source.add_user("terry.adams", password)
        fill(source, "terry.adams", {"INBOX": 120, "Sent Items": 30, "Projekte/Überblick": 12, "Deleted Items": 8})
        os.environ["MAILSHIFT_SOURCE_PASSWORD"] = source.master_password
        command = [
            "sync", "--source-host", source.host, "--source-port", str(source.port),
            "--source-security", "None", "--source-user", f"terry.adams*{source.master_user}",
            "--target-maildir", str(maildir), "--state", str(state),
            "--exclude-folder", "Deleted Items",
        ]
        print(f"$ mailshift {shlex.join(command)}")
        cli.main(command)
        now = datetime.datetime.now(datetime.UTC)
        for i in range(3):
            deliver(source, "terry.adams", "INBOX", make_message(1000 + i, subject=f"New mail {i}"), internaldate=now)
        print("\nThree new messages arrived; the same command again is an incremental sync:")
        code = cli.main(command)
    print(f"\nThe copy is in {maildir} (Maildir++, readable by Dovecot); state in {state}.")
    return code


if __name__ == "__main__":
    sys.exit(main())
