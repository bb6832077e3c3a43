"""The scheduler with real servers: concurrency limits, Stop, and a service killed mid-batch."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.notify import SmtpSecurity, SmtpSettings
from engine.service import MigrationService
from tests.conftest import NewUser
from tests.integration.test_batches import wait_for
from tests.servers.dovecot import DovecotServer
from tests.servers.mailbox import fill, snapshot
from tests.servers.smtp import SmtpListener

pytestmark = pytest.mark.integration


def make_batch(service: MigrationService, server: DovecotServer, logins: list[str], name: str, limit: int) -> None:
    lines = ["EmailAddress,UserName,Password"] + [
        f"{login}@contoso.edu,{login}*{server.master_user},{server.master_password}" for login in logins
    ]
    service.new_batch(name, "\r\n".join(lines).encode(), imap=True, remote_server=server.host, port=server.port,
                      max_concurrent_migrations=limit)


def maildir_hashes(root: Path) -> list[str]:
    out = []
    for folder, _, files in os.walk(root):
        if folder.endswith(("/cur", "/new")):
            out += [hashlib.sha256((Path(folder) / f).read_bytes()).hexdigest() for f in files]
    return sorted(out)


def source_hashes(server: DovecotServer, login: str) -> list[str]:
    return sorted(h for messages in snapshot(server, login).values() for h, _, _ in messages)


def test_concurrency_limit_is_never_exceeded(dovecot_slash: DovecotServer, new_user: NewUser, tmp_path: Path) -> None:
    logins = [new_user(dovecot_slash)[0] for _ in range(5)]
    for login in logins:
        fill(dovecot_slash, login, {"INBOX": 400}, size=3000)
    service = MigrationService(tmp_path / "instance", poll_seconds=0.05)
    try:
        make_batch(service, dovecot_slash, logins, "Limited", limit=2)
        service.start_batch("Limited")
        seen = []
        while service.get_batches("Limited")[0].status != "Synced":
            seen.append((service.scheduler.active(), service.get_batches("Limited")[0].active_count))
            time.sleep(0.01)
        assert max(a for a, _ in seen) == 2 and max(b for _, b in seen) == 2
        for login in logins:
            assert maildir_hashes(tmp_path / "instance" / "mailboxes" / f"{login}@contoso.edu") == source_hashes(dovecot_slash, login)
    finally:
        service.close()


def test_stop_lets_running_users_finish_a_step_and_reports_the_rest(
    dovecot_slash: DovecotServer, new_user: NewUser, tmp_path: Path
) -> None:
    logins = [new_user(dovecot_slash)[0] for _ in range(3)]
    for login in logins:
        fill(dovecot_slash, login, {"INBOX": 3000}, size=3000)
    with SmtpListener() as smtp:
        service = MigrationService(tmp_path / "instance", poll_seconds=0.05,
                                   smtp=SmtpSettings(host=smtp.host, port=smtp.port, security=SmtpSecurity.NONE,
                                                     sender="mailshift@contoso.edu"))
        try:
            make_batch(service, dovecot_slash, logins, "Stoppable", limit=1)
            service.set_batch("Stoppable", notification_emails=["helpdesk@contoso.edu"])
            service.start_batch("Stoppable")
            wait_for(lambda: any(u.status == "Syncing" for u in service.get_users()), "a running user")
            wait_for(lambda: service.get_user_statistics(f"{logins[0]}@contoso.edu").synced_item_count > 0, "progress")
            service.stop_batch("Stoppable")
            wait_for(lambda: service.get_batches("Stoppable")[0].status == "Stopped", "the stop")
            statuses = [u.status for u in service.get_users(batch="Stoppable")]
            assert statuses == ["Stopped", "Stopped", "Stopped"]
            first = service.get_user_statistics(f"{logins[0]}@contoso.edu")
            assert 0 < first.synced_item_count < 3000  # stopped mid-way, at a recorded chunk
            wait_for(lambda: len(smtp.messages) == 1, "the stop e-mail")
            body = smtp.messages[0].message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            assert "Stoppable" in smtp.messages[0].message["Subject"]
            [attachment] = list(smtp.messages[0].message.iter_attachments())
            text = attachment.get_content()
            assert text.count("stopped before this mailbox finished") == 1
            assert text.count("stopped before this mailbox was started") == 2
            assert body
            # Start resumes: everything ends copied exactly once.
            service.start_batch("Stoppable")
            wait_for(lambda: service.get_batches("Stoppable")[0].status == "Synced", "the resumed sync", timeout=120)
            for login in logins:
                assert maildir_hashes(tmp_path / "instance" / "mailboxes" / f"{login}@contoso.edu") == source_hashes(dovecot_slash, login)
        finally:
            service.close()


def test_service_killed_mid_batch_resumes_without_duplicates(
    dovecot_slash: DovecotServer, new_user: NewUser, tmp_path: Path
) -> None:
    logins = [new_user(dovecot_slash)[0] for _ in range(4)]
    for login in logins:
        fill(dovecot_slash, login, {"INBOX": 2000, "Archive": 500}, size=3000)
    instance = tmp_path / "instance"
    setup = MigrationService(instance, run_scheduler=False)
    make_batch(setup, dovecot_slash, logins, "Killed", limit=2)
    setup.start_batch("Killed")
    command = [sys.executable, "-m", "engine.cli", "worker", "--instance", str(instance), "--poll-seconds", "0.1"]
    rng = random.Random()
    for _ in range(3):
        worker = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: any(u.status in ("Syncing",) for u in setup.get_users()), "a running user")
        time.sleep(rng.uniform(0.2, 1.0))
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    worker = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: setup.get_batches("Killed")[0].status == "Synced", "the resumed batch", timeout=180)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, errors = worker.communicate(timeout=60)
    assert worker.returncode == 0, errors
    assert "queued again" in errors.decode()  # the dead worker's users were reclaimed
    assert {u.status for u in setup.get_users()} == {"Synced"}
    for login in logins:
        assert maildir_hashes(instance / "mailboxes" / f"{login}@contoso.edu") == source_hashes(dovecot_slash, login)
    setup.close()


def test_endpoint_limits_hold_across_batches_for_initial_and_incremental_syncs(
    dovecot_slash: DovecotServer, new_user: NewUser, tmp_path: Path
) -> None:
    """Two batches on one endpoint: never more than its MaxConcurrentMigrations initial syncs
    at once, nor more than its MaxConcurrentIncrementalSyncs incremental ones; the rest Queued."""
    logins = [new_user(dovecot_slash)[0] for _ in range(6)]
    for login in logins:
        fill(dovecot_slash, login, {"INBOX": 300}, size=3000)
    service = MigrationService(tmp_path / "instance", poll_seconds=0.05)
    running = ("Syncing", "IncrementalSyncing", "Completing")

    def watch(until: Callable[[], bool]) -> list[tuple[int, int]]:
        """(running, queued) user counts over both batches, sampled until ``until()``."""
        seen = []
        deadline = time.monotonic() + 120
        while not until():
            assert time.monotonic() < deadline, "timed out"
            statuses = [u.status for u in service.get_users()]
            seen.append((sum(s in running for s in statuses), statuses.count("Queued")))
            time.sleep(0.005)
        return seen

    def both(status: str) -> bool:
        return all(b.status == status for b in service.get_batches())

    try:
        service.new_endpoint("Limited", dovecot_slash.host, port=dovecot_slash.port, security="None",
                             max_concurrent_migrations=2, max_concurrent_incremental_syncs=1)
        for name, group in (("First", logins[:3]), ("Second", logins[3:])):
            rows = [f"{login}@contoso.edu,{login}*{dovecot_slash.master_user},{dovecot_slash.master_password}"
                    for login in group]
            service.new_batch(name, "\r\n".join(["EmailAddress,UserName,Password", *rows]).encode(),
                              source_endpoint="Limited", auto_start=True)
        initial = watch(lambda: both("Synced"))
        assert max(r for r, _ in initial) == 2
        assert any(r == 2 and q > 0 for r, q in initial)  # the limit held users back

        for login in logins:  # new mail, so that each incremental sync has work to do
            fill(dovecot_slash, login, {"INBOX": 150}, size=3000)
        service.set_batch("First", sync_now=True)
        service.set_batch("Second", sync_now=True)
        incremental = watch(lambda: both("Synced") and all(
            service.get_user_statistics(f"{login}@contoso.edu").synced_item_count == 450 for login in logins))
        assert max(r for r, _ in incremental) == 1
        assert any(r == 1 and q > 0 for r, q in incremental)
        for login in logins:
            assert maildir_hashes(tmp_path / "instance" / "mailboxes" / f"{login}@contoso.edu") == source_hashes(dovecot_slash, login)
    finally:
        service.close()


def test_stop_ends_a_sync_waiting_to_reconnect_at_once(tmp_path: Path) -> None:
    # Nothing listens on port 1: the sync is refused, and waits (back-off) before each new attempt.
    service = MigrationService(tmp_path / "instance", poll_seconds=0.05)
    try:
        service.new_endpoint("Down", "127.0.0.1", port=1, security="None", skip_verification=True)
        service.new_batch("Waiting", b"EmailAddress,UserName,Password\r\nw@contoso.edu,w,secret\r\n",
                          source_endpoint="Down")
        service.start_batch("Waiting")
        wait_for(lambda: service.get_users("w@contoso.edu")[0].status == "Syncing", "the sync to start")
        time.sleep(1.0)  # inside the reconnect back-off by now
        service.stop_batch("Waiting")
        started = time.monotonic()
        wait_for(lambda: service.get_batches("Waiting")[0].status == "Stopped", "the stop", timeout=10)
        assert time.monotonic() - started < 5
        assert service.get_users("w@contoso.edu")[0].status == "Stopped"
    finally:
        started = time.monotonic()
        service.close()
        assert time.monotonic() - started < 5
