"""Migration batches end to end at engine level: seed 000's walkthrough against real servers."""

from __future__ import annotations

import csv
import io
import logging
import time
from datetime import datetime, timedelta, timezone
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.errors import AlreadyExists, NotFound, Refused
from engine.csvfile import CsvError
from engine.imap import ImapEndpoint, Security
from engine.scheduler import TargetSettings
from engine.notify import SmtpSecurity, SmtpSettings
from engine.service import MigrationService
from engine.status import IllegalTransition
from tests.integration.test_sync import content
from tests.servers.dovecot import DovecotServer
from tests.servers.mailbox import deliver, fill, make_message, snapshot
from tests.servers.smtp import SmtpListener

pytestmark = pytest.mark.integration

USERS = {"terrya@contoso.edu": "terry.adams", "annb@contoso.edu": "ann.beebe", "chrisc@contoso.edu": "chris.cannon"}


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def smtp() -> Iterator[SmtpListener]:
    with SmtpListener() as listener:
        yield listener


@pytest.fixture
def service_for(tmp_path: Path, dovecot_dot: DovecotServer, smtp: SmtpListener) -> Iterator[Callable[..., MigrationService]]:
    """Services whose mailboxes go to the "dot" Dovecot (one user per address) and mail to ``smtp``."""
    made: list[MigrationService] = []

    def make(**options: object) -> MigrationService:
        target = TargetSettings(imap=ImapEndpoint(
            host=dovecot_dot.host, port=dovecot_dot.port, security=Security.NONE, user=dovecot_dot.master_user,
            authzid="{EmailAddress}", password=dovecot_dot.master_password,
        ))
        service = MigrationService(
            tmp_path / "instance", target=target, poll_seconds=0.1,
            smtp=SmtpSettings(host=smtp.host, port=smtp.port, security=SmtpSecurity.NONE, sender="mailshift@contoso.edu"),
            **options,  # type: ignore[arg-type]
        )
        made.append(service)
        return service

    yield make
    for service in made:
        service.close()


def seed_users(source: DovecotServer, target: DovecotServer, tag: str) -> dict[str, str]:
    """The seed's three users on the source (with mail) and their mailboxes on the target."""
    logins = {}
    for email, login in USERS.items():
        name = f"{login}.{tag}"
        source.add_user(name, f"own-{name}")
        target.add_user(email.replace("@", f".{tag}@"), "unused-target-password")
        fill(source, name, {"INBOX": 12, "Sent Items": 3, "Deleted Items": 2, "Junk Mail": 1})
        logins[email.replace("@", f".{tag}@")] = name
    return logins


def test_seed_000_walkthrough(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, service_for: Callable[..., MigrationService],
    smtp: SmtpListener, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    tag = tmp_path.name[-8:].replace("_", "")
    logins = seed_users(dovecot_slash, dovecot_dot, tag)
    master = dovecot_slash.master_password
    emails = list(logins)
    # The seed's Dovecot CSV: Admin*User logins with the administrator's password; the third
    # row has a wrong password, so its mailbox fails and lands in MigrationErrors.csv.
    csv_data = (
        "EmailAddress,UserName,Password\r\n"
        f"{emails[0]},{dovecot_slash.master_user}*{logins[emails[0]]},{master}\r\n"
        f"{emails[1]},{dovecot_slash.master_user}*{logins[emails[1]]},{master}\r\n"
        f"{emails[2]},{dovecot_slash.master_user}*{logins[emails[2]]},Wrong-Pa$$word1\r\n"
    ).encode()
    service = service_for()

    # Test-MigrationServerAvailability -RemoteServer <server> -Port 143
    assert str(service.test_server_availability(dovecot_slash.host, dovecot_slash.port)) == "Success"
    closed = service.test_server_availability("127.0.0.1", 1)
    assert closed.result == "Failed" and "127.0.0.1:1" in closed.message

    # New-MigrationBatch -Imap -Name MigrationBatch1 -CSVData ... -MaxConcurrentMigrations 3 ...
    batch = service.new_batch(
        "MigrationBatch1", csv_data, imap=True, max_concurrent_migrations=3, remote_server=dovecot_slash.host,
        port=dovecot_slash.port, time_zone="Pacific Standard Time", exclude_folders=["Deleted Items", "Junk Mail"],
    )
    assert (batch.status, batch.total_count, batch.excluded_folders) == ("Created", 3, ["Deleted Items", "Junk Mail"])
    assert [u.status for u in service.get_users(batch="MigrationBatch1")] == ["Stopped"] * 3
    with pytest.raises(AlreadyExists, match="MigrationBatch1"):
        service.new_batch("migrationbatch1", csv_data, imap=True, remote_server="h", port=143)

    # Start-MigrationBatch -NotificationEmails "super-user@contoso.edu","helpdesk@contoso.edu"
    service.start_batch(notification_emails=["super-user@contoso.edu", "helpdesk@contoso.edu"],
                        requested_by="administrator@contoso.edu")
    wait_for(lambda: service.get_batches("MigrationBatch1")[0].status == "SyncedWithErrors", "the initial sync")
    view = service.get_batches("MigrationBatch1")[0]
    assert (view.synced_count, view.failed_count, view.active_count, view.pending_count) == (2, 1, 0, 0)
    users = {u.identity: u for u in service.get_users()}
    assert users[emails[0]].status == users[emails[1]].status == "Synced"
    assert users[emails[2]].status == "Failed" and "refused the credentials" in (users[emails[2]].error_summary or "")
    for email in emails[:2]:
        expected = {k: v for k, v in content(snapshot(dovecot_slash, logins[email])).items()
                    if k not in ("Deleted Items", "Junk Mail")}
        copied = _target_snapshot(dovecot_dot, email)
        assert copied == {"INBOX": expected["INBOX"], "Sent": expected["Sent Items"]}
        stats = service.get_user_statistics(email, include_report=True)
        assert stats.synced_item_count == 15 and stats.percentage_complete == 100
        assert stats.total_items_in_source_mailbox_count == 15
        assert "Initial sync synced: 15 messages" in stats.report[-1]["Message"]

    # The status mail: to the requested recipients and the admin who started it, with errors.
    wait_for(lambda: len(smtp.messages) == 1, "the status e-mail")
    mail = smtp.messages[0]
    assert set(mail.rcpt_tos) == {"super-user@contoso.edu", "helpdesk@contoso.edu", "administrator@contoso.edu"}
    [attachment] = [p for p in mail.message.iter_attachments() if p.get_filename() == "MigrationErrors.csv"]
    rows = list(csv.DictReader(io.StringIO(attachment.get_content().lstrip("\ufeff"))))
    assert [(r["EmailAddress"], r["UserName"]) for r in rows] == [(emails[2], f"{dovecot_slash.master_user}*{logins[emails[2]]}")]
    assert "refused the credentials" in rows[0]["ErrorMessage"]

    # New mail arrives; an incremental sync (SyncNow) carries it.
    deliver(dovecot_slash, logins[emails[0]], "INBOX", make_message(4242, subject="After the MX switch"))
    service.set_batch("MigrationBatch1", sync_now=True)
    wait_for(lambda: service.get_user_statistics(emails[0]).synced_item_count == 16, "the incremental sync")
    wait_for(lambda: service.get_batches("MigrationBatch1")[0].status == "SyncedWithErrors", "the incremental end")
    assert len(_target_snapshot(dovecot_dot, emails[0])["INBOX"]) == 13

    # Complete-Migration -NotificationEmails super-user@contoso.edu
    assert service.complete_migration(notification_emails=["super-user@contoso.edu"]) == ["MigrationBatch1"]
    wait_for(lambda: service.get_batches("MigrationBatch1")[0].status == "CompletedWithErrors", "completion")
    final = {u.identity: u.status for u in service.get_users()}
    assert final == {emails[0]: "Completed", emails[1]: "Completed", emails[2]: "CompletionFailed"}
    wait_for(lambda: len(smtp.messages) == 2, "the completion e-mail")

    # Passwords appear nowhere: not in the database file, the log, or the e-mails.
    secrets = [master.encode(), b"Wrong-Pa$$word1"]
    files = b"".join(p.read_bytes() for p in (tmp_path / "instance").glob("mailshift.db*"))
    assert not any(s in files for s in secrets)
    assert not any(s.decode() in caplog.text for s in secrets)
    assert not any(s in m.raw for m in smtp.messages for s in secrets)


def _target_snapshot(server: DovecotServer, email: str) -> dict[str, list[tuple[str, frozenset[str], int]]]:
    return content(snapshot(server, f"{email}*{server.master_user}", server.master_password))


def test_illegal_operations_are_refused_with_the_current_status(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, service_for: Callable[..., MigrationService], tmp_path: Path
) -> None:
    service = service_for(run_scheduler=False)
    csv_data = b"EmailAddress,UserName,Password\r\nx@contoso.edu,x,secret\r\n"
    endpoint = service.new_endpoint("IMAPEndpoint1", dovecot_slash.host, port=dovecot_slash.port, security="None")
    assert (endpoint.port, endpoint.security, endpoint.max_concurrent_migrations) == (dovecot_slash.port, "None", 100)
    with pytest.raises(Refused, match="connection to the server 127.0.0.1:1 failed"):
        service.new_endpoint("Down", "127.0.0.1", port=1, security="None")
    service.new_batch("B1", csv_data, source_endpoint="IMAPEndpoint1")
    with pytest.raises(IllegalTransition, match="Stop-MigrationBatch can't be done on migration batch 'B1' while its status is Created"):
        service.stop_batch("B1")
    with pytest.raises(IllegalTransition, match="while its status is Created; it is allowed when the status is Synced, SyncedWithErrors"):
        service.complete_batch("B1")
    service.start_batch("B1")
    with pytest.raises(IllegalTransition, match="Start-MigrationBatch can't be done .* while its status is Starting"):
        service.start_batch("B1")
    with pytest.raises(IllegalTransition, match="Remove-MigrationBatch can't be done"):
        service.remove_batch("B1")
    with pytest.raises(Refused, match="x@contoso.edu \\(batch B1\\)"):
        service.new_batch("B2", csv_data, source_endpoint="IMAPEndpoint1")
    with pytest.raises(Refused, match="used by the batches B1"):
        service.remove_endpoint("IMAPEndpoint1")
    with pytest.raises(NotFound, match="The migration batch 'Nope' can't be found"):
        service.get_batches("Nope")
    with pytest.raises(CsvError, match="line 2, column EmailAddress"):
        service.new_batch("B3", b"EmailAddress,UserName,Password\r\nnot-an-address,x,y\r\n", source_endpoint="IMAPEndpoint1")
    service.stop_batch("B1")
    assert service.get_batches("B1")[0].status == "Stopping"


def test_endpoint_batch_cadence_schedule_limits_and_removal(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, service_for: Callable[..., MigrationService], tmp_path: Path
) -> None:
    tag = tmp_path.name[-8:].replace("_", "")
    logins = seed_users(dovecot_slash, dovecot_dot, tag)
    emails = list(logins)
    service = service_for()
    service.set_config(incremental_sync_interval_seconds=1)
    assert service.get_config().incremental_sync_interval_seconds == 1
    service.new_endpoint("IMAPEndpoint", dovecot_slash.host, port=dovecot_slash.port, security="None",
                         max_concurrent_migrations=2, max_concurrent_incremental_syncs=1)
    rows = "".join(f"{e},{logins[e]}*{dovecot_slash.master_user},{dovecot_slash.master_password}\r\n" for e in emails[:2])
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    batch = service.new_batch("IMAPBatch1", f"EmailAddress,UserName,Password\r\n{rows}".encode(),
                              source_endpoint="IMAPEndpoint", auto_start=True, start_after=later,
                              exclude_folders=["#DeletedItems#", "Junk Mail"], bad_item_limit=5)
    assert batch.source_endpoint == "IMAPEndpoint"
    wait_for(lambda: service.get_batches("IMAPBatch1")[0].status == "Waiting", "StartAfter to hold the batch")
    service.set_batch("IMAPBatch1", start_after=datetime.now(timezone.utc) - timedelta(seconds=1), large_item_limit=3)
    wait_for(lambda: service.get_batches("IMAPBatch1")[0].status == "Synced", "the initial sync")
    assert [u.status for u in service.get_users(status="Synced")] == ["Synced", "Synced"]
    # the incremental cadence (1 s here) carries new mail without SyncNow
    deliver(dovecot_slash, logins[emails[1]], "INBOX", make_message(777, subject="Daily sync"))
    wait_for(lambda: service.get_user_statistics(emails[1]).synced_item_count == 16, "a scheduled incremental sync")
    assert len(_target_snapshot(dovecot_dot, emails[1])["INBOX"]) == 13
    stats = service.get_user_statistics(emails[1], include_report=True)
    assert any("Incremental sync synced: 1 messages" in e["Message"] for e in stats.report)
    # Remove-MigrationBatch stops the syncs and forgets the batch; copied mail stays.
    wait_for(lambda: service.get_batches("IMAPBatch1")[0].status == "Synced", "a quiet moment")
    service.set_config(incremental_sync_interval_seconds=3600)
    wait_for(lambda: service.get_batches("IMAPBatch1")[0].status == "Synced", "a quiet moment")
    service.remove_batch("IMAPBatch1")
    with pytest.raises(NotFound):
        service.get_batches("IMAPBatch1")
    assert service.get_users() == [] and service.get_status().total_count == 0
    assert len(_target_snapshot(dovecot_dot, emails[1])["INBOX"]) == 13
    service.remove_endpoint("IMAPEndpoint")
    assert service.get_endpoints() == []
