"""Migration batches end to end at engine level: seed 000's walkthrough against real servers."""

from __future__ import annotations

import csv
import io
import logging
import re
import time
from datetime import datetime, timedelta, timezone
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.errors import AlreadyExists, ConfigurationError, NotFound, Refused
from engine.csvfile import CsvError
from engine.imap import ImapEndpoint, Security
from engine.scheduler import TargetSettings
from engine.notify import SmtpSecurity, SmtpSettings
from engine.service import MigrationService
from engine.status import IllegalTransition
from tests.conftest import NewUser
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
    """Services whose mailboxes go to the "dot" Dovecot (or ``target_server``; one user per address) and
    whose status mails go to ``smtp``."""
    made: list[MigrationService] = []

    def make(target_server: DovecotServer | None = None, **options: object) -> MigrationService:
        server = target_server or dovecot_dot
        target = TargetSettings(imap=ImapEndpoint(
            host=server.host, port=server.port, security=Security.NONE, user=server.master_user,
            authzid="{EmailAddress}", password=server.master_password,
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
        assert copied == {"INBOX": expected["INBOX"], "Sent Items": expected["Sent Items"]}
        stats = service.get_user_statistics(email, include_report=True)
        assert stats.synced_item_count == 15 and stats.percentage_complete == 100
        assert stats.total_items_in_source_mailbox_count == 15
        assert "Initial sync synced: 15 messages" in stats.report[-1]["Message"]

    # The status mail: to the requested recipients and the admin who started it, with errors.
    wait_for(lambda: len(smtp.messages) == 1, "the status e-mail")
    mail = smtp.messages[0]
    assert set(mail.rcpt_tos) == {"super-user@contoso.edu", "helpdesk@contoso.edu", "administrator@contoso.edu"}
    assert mail.message["Subject"] == 'Migration batch "MigrationBatch1": initial sync finished, 2 of 3 mailboxes synced, 1 failed'
    assert counts_in(mail.message.get_body(("plain",)).get_content()) == {  # type: ignore[union-attr]
        "TotalCount": 3, "SyncedCount": 2, "FinalizedCount": 0, "FailedCount": 1, "StoppedCount": 0, "PendingCount": 0}
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
    assert service.complete_migration(notification_emails=["super-user@contoso.edu"],
                                      requested_by="administrator@contoso.edu") == ["MigrationBatch1"]
    wait_for(lambda: service.get_batches("MigrationBatch1")[0].status == "CompletedWithErrors", "completion")
    final = {u.identity: u.status for u in service.get_users()}
    assert final == {emails[0]: "Completed", emails[1]: "Completed", emails[2]: "CompletionFailed"}
    assert len(_target_snapshot(dovecot_dot, emails[0])["INBOX"]) == 13  # the final sync copied nothing twice

    # The final status mail: to the admin who ran Complete-Migration and every recipient so far,
    # with the counts, and the still-failing row in MigrationErrors.csv.
    wait_for(lambda: len(smtp.messages) == 2, "the completion e-mail")
    mail = smtp.messages[1]
    assert set(mail.rcpt_tos) == {"super-user@contoso.edu", "helpdesk@contoso.edu", "administrator@contoso.edu"}
    assert mail.message["Subject"] == 'Migration batch "MigrationBatch1": completed, 2 of 3 mailboxes finalized, 1 failed'
    body = mail.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert counts_in(body) == {"TotalCount": 3, "SyncedCount": 0, "FinalizedCount": 2, "FailedCount": 1,
                               "StoppedCount": 0, "PendingCount": 0}
    assert "Status:         CompletedWithErrors" in body
    assert "run Complete-Migration again to retry the failed mailboxes" in " ".join(body.split())
    [attachment] = [p for p in mail.message.iter_attachments() if p.get_filename() == "MigrationErrors.csv"]
    rows = list(csv.DictReader(io.StringIO(attachment.get_content().lstrip("\ufeff"))))
    assert [(r["EmailAddress"], r["UserName"]) for r in rows] == [(emails[2], f"{dovecot_slash.master_user}*{logins[emails[2]]}")]
    assert "refused the credentials" in rows[0]["ErrorMessage"]
    # What the mail tells the admin to do works: Complete-Migration again retries the failed
    # mailbox (its password is still wrong) and leaves the completed ones alone.
    assert service.complete_migration() == ["MigrationBatch1"]
    assert service.get_batches("MigrationBatch1")[0].status == "Completing"
    wait_for(lambda: service.get_batches("MigrationBatch1")[0].status == "CompletedWithErrors", "the retry")
    assert {u.identity: u.status for u in service.get_users()} == final
    wait_for(lambda: len(smtp.messages) == 3, "the second completion e-mail")

    # Passwords appear nowhere: not in the database file, the log, or the e-mails.
    secrets = [master.encode(), b"Wrong-Pa$$word1"]
    files = b"".join(p.read_bytes() for p in (tmp_path / "instance").glob("mailshift.db*"))
    assert not any(s in files for s in secrets)
    assert not any(s.decode() in caplog.text for s in secrets)
    assert not any(s in m.raw for m in smtp.messages for s in secrets)


def counts_in(body: str) -> dict[str, int]:
    """The ``...Count:  n`` summary lines of a status mail's body."""
    found = (re.fullmatch(r"(\w+Count):\s+(\d+)", line) for line in body.splitlines())
    return {m[1]: int(m[2]) for m in found if m}


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


def mailbox_pair(source: DovecotServer, target: DovecotServer, new_user: NewUser,
                 folders: dict[str, int | list[bytes]]) -> tuple[str, str, str]:
    """A source user with ``folders`` of mail and an empty target mailbox: (email, login, password)."""
    login, password = new_user(source)
    fill(source, login, folders)
    email = f"{login}@contoso.edu"
    target.add_user(email, "unused-target-password")
    return email, login, password


def csv_of(*rows: tuple[str, str, str], extra: str = "") -> bytes:
    header = "EmailAddress,UserName,Password" + (f",{extra}" if extra else "")
    return "\r\n".join([header, *(",".join(row) for row in rows)]).encode()


def status_of(service: MigrationService, batch: str) -> str:
    return service.get_batches(batch)[0].status


def test_endpoint_defaults_and_set_endpoint_verifies_changed_connections_and_limits(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, service_for: Callable[..., MigrationService],
    new_user: NewUser,
) -> None:
    service = service_for()
    # New-MigrationEndpoint -IMAP -Name Defaults -RemoteServer 127.0.0.1 -SkipVerification
    default = service.new_endpoint("Defaults", "127.0.0.1", skip_verification=True)
    assert (default.port, default.security, default.authentication, default.accept_untrusted_certificates,
            default.max_concurrent_migrations, default.max_concurrent_incremental_syncs) == (993, "Ssl", "Basic", False, 100, 20)
    # Without -SkipVerification an unreachable server is refused (port 1: nothing listens there,
    # unlike 993, where the machine may run an IMAP server of its own).
    with pytest.raises(Refused, match=r"127\.0\.0\.1:1 failed.*-SkipVerification"):
        service.new_endpoint("Unverified", "127.0.0.1", port=1)
    assert [e.identity for e in service.get_endpoints()] == ["Defaults"]

    service.new_endpoint("Source", dovecot_slash.host, port=dovecot_slash.port, security="None",
                         max_concurrent_migrations=4, max_concurrent_incremental_syncs=2)
    # A changed server is tested first: nothing answers on port 1, so nothing changes.
    with pytest.raises(Refused, match=r"The connection to the server 127\.0\.0\.1:1 failed.*-SkipVerification"):
        service.set_endpoint("Source", port=1)
    assert service.get_endpoints("Source")[0].port == dovecot_slash.port
    # ... unless -SkipVerification says not to.
    assert service.set_endpoint("Source", port=1, skip_verification=True).port == 1
    # Implicit TLS with Dovecot's self-signed certificate: refused until the certificate is accepted.
    with pytest.raises(Refused, match="certificate is not trusted"):
        service.set_endpoint("Source", port=dovecot_slash.ssl_port, security="Ssl")
    assert service.get_endpoints("Source")[0].port == 1
    tls = service.set_endpoint("Source", port=dovecot_slash.ssl_port, security="ssl", accept_untrusted_certificates=True)
    assert (tls.port, tls.security, tls.accept_untrusted_certificates) == (dovecot_slash.ssl_port, "Ssl", True)
    # Taking the acceptance back is a connection change too: the certificate is still self-signed.
    with pytest.raises(Refused, match="certificate is not trusted"):
        service.set_endpoint("Source", accept_untrusted_certificates=False)
    assert service.get_endpoints("Source")[0].accept_untrusted_certificates is True

    # MaxConcurrentIncrementalSyncs may never exceed MaxConcurrentMigrations, whichever one changes.
    with pytest.raises(ConfigurationError, match="-MaxConcurrentIncrementalSyncs can't be larger than -MaxConcurrentMigrations"):
        service.set_endpoint("Source", max_concurrent_incremental_syncs=5)
    with pytest.raises(ConfigurationError, match="-MaxConcurrentIncrementalSyncs can't be larger than -MaxConcurrentMigrations"):
        service.set_endpoint("Source", max_concurrent_migrations=1)
    with pytest.raises(ConfigurationError, match="must be at least 1"):
        service.set_endpoint("Source", max_concurrent_incremental_syncs=0)
    with pytest.raises(ConfigurationError, match="Set-MigrationEndpoint cannot change exclude_folders"):
        service.set_endpoint("Source", exclude_folders=["Junk Mail"])
    limits = service.set_endpoint("Source", max_concurrent_migrations=50, max_concurrent_incremental_syncs=25)
    assert (limits.max_concurrent_migrations, limits.max_concurrent_incremental_syncs) == (50, 25)
    assert (limits.port, limits.security) == (dovecot_slash.ssl_port, "Ssl")  # untouched by a limits change

    # A batch on the changed endpoint connects with the new settings: implicit TLS on the SSL port.
    email, login, password = mailbox_pair(dovecot_slash, dovecot_dot, new_user, {"INBOX": 3})
    service.new_batch("OverTls", csv_of((email, login, password)), source_endpoint="Source", auto_start=True)
    wait_for(lambda: status_of(service, "OverTls") == "Synced", "the initial sync over TLS")
    assert _target_snapshot(dovecot_dot, email) == content(snapshot(dovecot_slash, login))
    # The test's own helpers log in on the plain port ("secured": loopback); only the engine used TLS.
    logins = [line for line in dovecot_slash.log_text().splitlines() if f"Login: user=<{login}>" in line]
    assert any(", TLS," in line for line in logins), logins


def test_start_retries_failed_users_end_to_end_without_recopying_synced_ones(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, service_for: Callable[..., MigrationService],
    new_user: NewUser, tmp_path: Path,
) -> None:
    good, good_login, good_password = mailbox_pair(dovecot_slash, dovecot_dot, new_user, {"INBOX": 5, "Archive": 2})
    # The second row names an account the source does not have yet (say, a typo the mail admin
    # fixes on the server): its login fails until the account exists with that password.
    late_login, late_password = f"late-{tmp_path.name[-8:].replace('_', '')}", "Late-Pa55word"
    late = f"{late_login}@contoso.edu"
    dovecot_dot.add_user(late, "unused-target-password")
    service = service_for()
    service.new_batch("Retry", csv_of((good, good_login, good_password), (late, late_login, late_password)),
                      imap=True, remote_server=dovecot_slash.host, port=dovecot_slash.port)
    service.start_batch("Retry")
    wait_for(lambda: status_of(service, "Retry") == "SyncedWithErrors", "the initial sync")
    users = {u.identity: u for u in service.get_users(batch="Retry")}
    assert (users[good].status, users[late].status) == ("Synced", "Failed")
    assert "refused the credentials" in (users[late].error_summary or "")
    assert users[late].last_successful_sync_time is None
    first = service.get_user_statistics(good, include_report=True)
    assert first.synced_item_count == 7 and len(first.report) == 1

    # The account is created on the source with the CSV's password; Start-MigrationBatch retries.
    dovecot_slash.add_user(late_login, late_password)
    fill(dovecot_slash, late_login, {"INBOX": 4, "Sent": 1})
    service.start_batch("Retry")
    wait_for(lambda: status_of(service, "Retry") == "Synced", "the retried sync")
    view = service.get_batches("Retry")[0]
    assert (view.total_count, view.synced_count, view.failed_count, view.pending_count) == (2, 2, 0, 0)
    retried = service.get_user_statistics(late, include_report=True)
    assert (retried.status, retried.error, retried.synced_item_count) == ("Synced", None, 5)
    assert retried.last_successful_sync_time is not None and first.last_successful_sync_time is not None
    assert retried.last_successful_sync_time > first.last_successful_sync_time
    assert [e["Message"].split(":")[0] for e in retried.report] == ["Initial sync failed", "Initial sync synced"]
    assert _target_snapshot(dovecot_dot, late) == content(snapshot(dovecot_slash, late_login))
    # The user that had synced was left alone: same report, same sync time, no second copy.
    again = service.get_user_statistics(good, include_report=True)
    assert (again.synced_item_count, again.report, again.last_successful_sync_time) == (
        7, first.report, first.last_successful_sync_time)
    assert _target_snapshot(dovecot_dot, good) == content(snapshot(dovecot_slash, good_login))


def test_complete_batch_runs_a_final_sync_and_mails_a_clean_completion_report(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, service_for: Callable[..., MigrationService],
    new_user: NewUser, smtp: SmtpListener,
) -> None:
    pairs = [mailbox_pair(dovecot_slash, dovecot_dot, new_user, {"INBOX": 4, "Sent Items": 2}) for _ in range(2)]
    service = service_for()
    service.new_endpoint("Source", dovecot_slash.host, port=dovecot_slash.port, security="None")
    service.new_batch("Final", csv_of(*pairs), source_endpoint="Source", auto_start=True,
                      notification_emails=["helpdesk@contoso.edu"])
    wait_for(lambda: status_of(service, "Final") == "Synced", "the initial sync")
    wait_for(lambda: len(smtp.messages) == 1, "the initial-sync e-mail")

    # Mail arrives on the source after the initial sync (before the MX switch took effect).
    (first, first_login, _), (second, second_login, _) = pairs
    deliver(dovecot_slash, first_login, "INBOX", make_message(9001, subject="Late arrival"))
    deliver(dovecot_slash, second_login, "Sent Items", make_message(9002, subject="Late reply", folder="Sent Items"))
    service.complete_batch("Final", notification_emails=["cio@contoso.edu"], requested_by="admin@contoso.edu")
    assert status_of(service, "Final") == "Completing"
    wait_for(lambda: status_of(service, "Final") == "Completed", "the completion")

    view = service.get_batches("Final")[0]
    assert (view.total_count, view.finalized_count, view.failed_count, view.synced_count) == (2, 2, 0, 0)
    assert view.finalized_date_time is not None
    for email, login, _ in pairs:
        stats = service.get_user_statistics(email, include_report=True)
        assert (stats.status, stats.synced_item_count) == ("Completed", 7)
        # Figures over the whole mailbox, not just the final sync's one new message (2048 bytes each).
        assert (stats.total_items_in_source_mailbox_count, stats.estimated_total_transfer_size,
                stats.bytes_transferred, stats.percentage_complete) == (7, 7 * 2048, 7 * 2048, 100)
        assert stats.report[-1]["Message"].startswith("Final sync synced: 1 messages")
        # "Sent Items" keeps its name: the target has no folder carrying \\Sent.
        assert _target_snapshot(dovecot_dot, email) == content(snapshot(dovecot_slash, login))
    with pytest.raises(IllegalTransition, match="while its status is Completed"):
        service.complete_batch("Final")

    wait_for(lambda: len(smtp.messages) == 2, "the completion e-mail")
    mail = smtp.messages[1]
    assert set(mail.rcpt_tos) == {"helpdesk@contoso.edu", "cio@contoso.edu", "admin@contoso.edu"}
    assert mail.message["Subject"] == 'Migration batch "Final": completed, 2 of 2 mailboxes finalized'
    body = mail.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert counts_in(body) == {"TotalCount": 2, "SyncedCount": 0, "FinalizedCount": 2, "FailedCount": 0,
                               "StoppedCount": 0, "PendingCount": 0}
    assert "Status:         Completed" in body
    assert "Final counts: 2 of 2 mailboxes completed, 0 failed." in body
    assert "no MigrationErrors.csv is attached" in " ".join(body.split())
    assert list(mail.message.iter_attachments()) == []


def test_user_statistics_report_transfer_sizes_and_skipped_large_items(
    dovecot_slash: DovecotServer, dovecot_small: DovecotServer, service_for: Callable[..., MigrationService],
    new_user: NewUser,
) -> None:
    """The target refuses messages over 1 MiB: a batch with LargeItemLimit 1 skips the one large
    item and reports it; a batch with the default LargeItemLimit 0 fails the mailbox on it."""
    big = make_message(1, size=1_500_000, subject="Scanned contract", folder="Scans")
    small = [make_message(i, size=2048) for i in range(5)]
    pairs = [mailbox_pair(dovecot_slash, dovecot_small, new_user, {"INBOX": list(small), "Scans": [big]})
             for _ in range(2)]
    (allowed, allowed_login, allowed_password), (strict, strict_login, strict_password) = pairs
    service = service_for(target_server=dovecot_small)
    service.new_endpoint("Source", dovecot_slash.host, port=dovecot_slash.port, security="None")
    before = datetime.now(timezone.utc).replace(microsecond=0)
    service.new_batch("Lenient", csv_of((allowed, allowed_login, allowed_password)), source_endpoint="Source",
                      large_item_limit=1, auto_start=True)
    service.new_batch("Strict", csv_of((strict, strict_login, strict_password)), source_endpoint="Source",
                      auto_start=True)
    wait_for(lambda: status_of(service, "Lenient") == "Synced", "the lenient batch's initial sync")
    wait_for(lambda: status_of(service, "Strict") == "SyncedWithErrors", "the strict batch's initial sync")
    after = datetime.now(timezone.utc)

    stats = service.get_user_statistics(allowed, include_skipped_items=True)
    assert (stats.status, stats.synced_item_count, stats.skipped_item_count) == ("Synced", 5, 1)
    assert stats.total_items_in_source_mailbox_count == 6
    assert stats.estimated_total_transfer_size == 5 * 2048 + len(big)
    assert stats.bytes_transferred == 5 * 2048  # the refused message is not counted as transferred
    assert stats.last_successful_sync_time is not None and before <= stats.last_successful_sync_time <= after
    [skipped] = stats.skipped_items
    assert (skipped.kind, skipped.folder_name, skipped.subject, skipped.message_size) == (
        "LargeItem", "Scans", "Scanned contract", len(big))
    assert skipped.failure.startswith("the target refused the message") and skipped.date_received
    target_inbox = content(snapshot(dovecot_small, f"{allowed}*{dovecot_small.master_user}", dovecot_small.master_password))
    assert target_inbox == {"INBOX": content(snapshot(dovecot_slash, allowed_login))["INBOX"]}

    failed = service.get_user_statistics(strict, include_skipped_items=True)
    assert (failed.status, failed.skipped_item_count, failed.last_successful_sync_time) == ("Failed", 1, None)
    assert "the mailbox has 1 large items, more than LargeItemLimit 0 allows" in (failed.error or "")
    assert [(s.kind, s.subject) for s in failed.skipped_items] == [("LargeItem", "Scanned contract")]
    assert failed.total_items_in_source_mailbox_count == 6
    assert [b.large_item_limit for b in service.get_batches()] == [1, 0]

    # As the error says: raise LargeItemLimit, then Start-MigrationBatch retries the mailbox.
    service.set_batch("Strict", large_item_limit=1)
    service.start_batch("Strict")
    wait_for(lambda: status_of(service, "Strict") == "Synced", "the retry with LargeItemLimit 1")
    retried = service.get_user_statistics(strict, include_skipped_items=True)
    assert (retried.status, retried.error, retried.synced_item_count, retried.skipped_item_count) == ("Synced", None, 5, 1)
    assert retried.bytes_transferred == 5 * 2048
    target = content(snapshot(dovecot_small, f"{strict}*{dovecot_small.master_user}", dovecot_small.master_password))
    assert target == {"INBOX": content(snapshot(dovecot_slash, strict_login))["INBOX"]}


def test_domain_admin_user_logins_reach_the_server_exactly_as_written(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, service_for: Callable[..., MigrationService],
    new_user: NewUser, smtp: SmtpListener,
) -> None:
    """Seed 000's third login form (Domain/Admin/User) is not rewritten: the server sees it."""
    email, login, _ = mailbox_pair(dovecot_slash, dovecot_dot, new_user, {"INBOX": 1})
    user_name = f"contoso.edu/{dovecot_slash.master_user}/{login}"
    service = service_for()
    service.new_batch("Slashes", csv_of((email, user_name, dovecot_slash.master_password)), imap=True,
                      remote_server=dovecot_slash.host, port=dovecot_slash.port, notification_emails=["helpdesk@contoso.edu"])
    service.start_batch("Slashes")
    wait_for(lambda: status_of(service, "Slashes") == "SyncedWithErrors", "the failed sync")
    assert "refused the credentials" in (service.get_users(email)[0].error_summary or "")
    assert f"user=<{user_name}>" in dovecot_slash.log_text()
    wait_for(lambda: len(smtp.messages) == 1, "the status e-mail")
    [attachment] = list(smtp.messages[0].message.iter_attachments())
    rows = list(csv.DictReader(io.StringIO(attachment.get_content().lstrip("\ufeff"))))
    assert [(r["EmailAddress"], r["UserName"]) for r in rows] == [(email, user_name)]


def test_a_batch_removed_and_created_again_copies_nothing_twice(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, service_for: Callable[..., MigrationService],
    new_user: NewUser,
) -> None:
    """Removing a batch forgets its users' copy state; the same users in a new batch find their
    messages already on the target (by content) and copy only what arrived since."""
    email, login, password = mailbox_pair(dovecot_slash, dovecot_dot, new_user, {"INBOX": 20, "Archive": 6})
    service = service_for()
    rows = csv_of((email, login, password))
    service.new_batch("First", rows, imap=True, remote_server=dovecot_slash.host, port=dovecot_slash.port)
    service.start_batch("First")
    wait_for(lambda: status_of(service, "First") == "Synced", "the first batch")
    service.stop_batch("First")
    wait_for(lambda: status_of(service, "First") == "Stopped", "the stop")
    service.remove_batch("First")
    wait_for(lambda: not service.get_batches(), "the removal")
    fill(dovecot_slash, login, {"INBOX": [make_message(500, folder="INBOX")]})
    service.new_batch("Again", rows, imap=True, remote_server=dovecot_slash.host, port=dovecot_slash.port)
    service.start_batch("Again")
    wait_for(lambda: status_of(service, "Again") == "Synced", "the batch created again")
    assert _target_snapshot(dovecot_dot, email) == content(snapshot(dovecot_slash, login))
    assert sum(len(m) for m in _target_snapshot(dovecot_dot, email).values()) == 27


def test_a_user_root_batch_warns_in_the_users_report_that_read_state_may_be_the_admins(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, service_for: Callable[..., MigrationService],
    new_user: NewUser,
) -> None:
    email, login, password = mailbox_pair(dovecot_slash, dovecot_dot, new_user,
                                          {"INBOX": 1, "users/terry": 4, "users/terry/Sent": 2})
    service = service_for()
    service.new_batch("Shared", csv_of((email, login, password, "/users/terry"), extra="UserRoot"),
                      imap=True, remote_server=dovecot_slash.host, port=dovecot_slash.port)
    service.start_batch("Shared")
    wait_for(lambda: status_of(service, "Shared") == "Synced", "the sync")
    stats = service.get_user_statistics(email, include_report=True)
    messages = [entry["Message"] for entry in stats.report]
    assert messages[0].startswith("Initial sync synced: 6 messages")
    assert any(m.startswith("Warning: UserRoot") and "\\Seen per user (Cyrus)" in m for m in messages), messages
