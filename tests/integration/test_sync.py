"""The sync engine against real Dovecot servers: exact, incremental, mapped, limited, secure."""

from __future__ import annotations

import datetime
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from engine.errors import AuthenticationFailed, CertificateRejected
from engine.imap import ImapEndpoint, ImapSession, Security
from engine.maildir import MaildirTarget
from engine.store import Store
from engine.sync import MailboxSync, Outcome, SyncOptions, SyncReport
from engine.targets import ImapTarget, Target
from tests.conftest import NewUser
from tests.servers.dovecot import DovecotServer
from tests.servers.mailbox import Mail, client, create_folder, deliver, fill, imap_name, make_message, snapshot

pytestmark = pytest.mark.integration

UTC = datetime.UTC
Snapshot = dict[str, list[tuple[str, frozenset[str], int]]]


# --------------------------------------------------------------------------- helpers


def source_endpoint(server: DovecotServer, user: str, password: str, **kw: Any) -> ImapEndpoint:
    return ImapEndpoint(host=server.host, port=server.port, security=Security.NONE, user=user, password=password, **kw)


def master_endpoint(server: DovecotServer, user: str) -> ImapEndpoint:
    """The admin's way in: SASL PLAIN as the master user acting as ``user``."""
    return ImapEndpoint(
        host=server.host, port=server.port, security=Security.NONE,
        user=server.master_user, authzid=user, password=server.master_password,
    )


def run(
    source: ImapEndpoint,
    target: Callable[[], Target],
    state: Path,
    key: str = "mailbox",
    **options: Any,
) -> SyncReport:
    store = Store(state)
    try:
        return MailboxSync(source, target, store, key, SyncOptions(**options)).run()
    finally:
        store.close()


def imap_target(server: DovecotServer, user: str) -> Callable[[], Target]:
    endpoint = master_endpoint(server, user)
    return lambda: ImapTarget(endpoint)


def content(snap: Snapshot) -> Snapshot:
    """A snapshot without empty folders (hierarchy-only parents exist on one side only)."""
    return {name: messages for name, messages in snap.items() if messages}


def renamed(snap: Snapshot, names: dict[str, str]) -> Snapshot:
    return {names.get(name, name): messages for name, messages in snap.items()}


def give_tree(server: DovecotServer, root: Path) -> None:
    """Hand a Maildir written by the test process to the server's mail user."""
    server.give(root)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            server.give(Path(folder) / name)


# --------------------------------------------------------------------------- exact copies

SOURCE_FOLDERS = {
    "INBOX": 40,
    "Archive/2019": 12,
    "Archive/2019/Q1": 3,
    "Projekte/Überblick": 5,
    "日本語": 4,
}


@pytest.mark.parametrize(("src_name", "dst_name"), [("dovecot_slash", "dovecot_dot"), ("dovecot_dot", "dovecot_slash")])
def test_full_copy_is_exact_between_layouts(
    request: pytest.FixtureRequest, new_user: NewUser, tmp_path: Path, src_name: str, dst_name: str
) -> None:
    src: DovecotServer = request.getfixturevalue(src_name)
    dst: DovecotServer = request.getfixturevalue(dst_name)
    user, password = new_user(src)
    target_user, _ = new_user(dst)
    fill(src, user, SOURCE_FOLDERS, size=3000)
    deliver(src, user, "INBOX", make_message(900, subject="keywords"), flags=("\\Seen", "$Forwarded", "Work"),
            internaldate=datetime.datetime(2009, 2, 3, 4, 5, 6, tzinfo=UTC))
    deliver(src, user, "INBOX", make_message(901, with_message_id=False, size=70_000), flags=("\\Draft",))

    report = run(source_endpoint(src, user, password), imap_target(dst, target_user), tmp_path / "s.db")

    assert report.outcome is Outcome.SYNCED, report.error
    before = content(snapshot(src, user))
    after = content(snapshot(dst, target_user))
    assert after == before
    assert sum(len(m) for m in after.values()) == sum(SOURCE_FOLDERS.values()) + 2
    assert report.progress["messages_copied"] == sum(SOURCE_FOLDERS.values()) + 2
    assert report.progress["messages_total"] == sum(SOURCE_FOLDERS.values()) + 2


def test_second_run_copies_nothing_and_changes_nothing(dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, tmp_path: Path) -> None:
    user, password = new_user(dovecot_slash)
    target_user, _ = new_user(dovecot_dot)
    fill(dovecot_slash, user, {"INBOX": 30, "Work": 10})
    source = source_endpoint(dovecot_slash, user, password)
    first = run(source, imap_target(dovecot_dot, target_user), tmp_path / "s.db")
    copied = snapshot(dovecot_dot, target_user)
    second = run(source, imap_target(dovecot_dot, target_user), tmp_path / "s.db")
    assert first.progress["messages_copied"] == 40
    assert second.outcome is Outcome.SYNCED
    assert second.progress["messages_copied"] == 0
    assert second.progress["flags_updated"] == 0
    assert snapshot(dovecot_dot, target_user) == copied


def test_a_re_sync_connects_to_the_target_only_when_the_source_changed(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, tmp_path: Path
) -> None:
    """A daily incremental sync of an unchanged mailbox reads the source's folder list and
    STATUS answers and stops there: the target is not connected. New mail, a new folder, or
    a changed ExcludeFolders list brings the target back (planning again where needed)."""
    user, password = new_user(dovecot_slash)
    target_user, _ = new_user(dovecot_dot)
    fill(dovecot_slash, user, {"INBOX": 12, "Work": 4, "Junk": 2})
    source = source_endpoint(dovecot_slash, user, password)
    real = imap_target(dovecot_dot, target_user)
    opened: list[int] = []

    def counting() -> Target:
        opened.append(1)
        return real()

    state = tmp_path / "s.db"
    first = run(source, counting, state, exclude=("Junk",))
    assert first.progress["messages_copied"] == 16 and len(opened) == 1

    opened.clear()
    quiet = run(source, counting, state, exclude=("Junk",))
    assert quiet.outcome is Outcome.SYNCED and opened == []
    assert quiet.folders == first.folders and quiet.excluded == first.excluded
    assert quiet.progress["folders_total"] == 2 and quiet.progress["messages_total"] == 16

    deliver(dovecot_slash, user, "Work", make_message(900, folder="Work"))
    newer = run(source, counting, state, exclude=("Junk",))
    assert newer.progress["messages_copied"] == 1 and len(opened) == 1

    fill(dovecot_slash, user, {"Projects/2026": 3})
    opened.clear()
    planned = run(source, counting, state, exclude=("Junk",))
    assert planned.progress["messages_copied"] == 3 and len(opened) == 1
    assert {f["source"] for f in planned.folders} == {"INBOX", "Work", "Projects/2026"}

    opened.clear()
    included = run(source, counting, state)  # Junk no longer excluded: planned again, copied
    assert included.progress["messages_copied"] == 2 and len(opened) == 1
    assert content(snapshot(dovecot_dot, target_user)) == content(snapshot(dovecot_slash, user))


def test_incremental_sync_carries_new_mail_flags_and_optionally_deletions(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, tmp_path: Path
) -> None:
    user, password = new_user(dovecot_slash)
    target_user, _ = new_user(dovecot_dot)
    fill(dovecot_slash, user, {"INBOX": 20, "Work": 5})
    source = source_endpoint(dovecot_slash, user, password)
    target = imap_target(dovecot_dot, target_user)
    run(source, target, tmp_path / "s.db")

    with client(dovecot_slash, user) as imap:
        imap.select_folder("INBOX")
        uids = imap.search("ALL")
        before = imap.get_flags(uids[:7])
        imap.add_flags(uids[:3], ["\\Flagged", "Important"])
        imap.remove_flags(uids[3:6], ["\\Seen"])
        imap.set_flags(uids[6:7], ["\\Answered"])
        after = imap.get_flags(uids[:7])
        changed = sum(set(before[u]) != set(after[u]) for u in uids[:7])
        imap.delete_messages(uids[-2:])
        imap.expunge()
    deliver(dovecot_slash, user, "INBOX", make_message(500, subject="new one"), flags=("\\Seen",))
    deliver(dovecot_slash, user, "Work", make_message(501, folder="Work"))

    second = run(source, target, tmp_path / "s.db")
    assert second.progress["messages_copied"] == 2
    assert second.progress["messages_deleted"] == 0
    source_now, target_now = snapshot(dovecot_slash, user), snapshot(dovecot_dot, target_user)
    assert target_now["Work"] == source_now["Work"]
    # deletions are not carried by default: the two deleted messages are still on the target
    assert len(target_now["INBOX"]) == len(source_now["INBOX"]) + 2
    assert set(source_now["INBOX"]) <= set(target_now["INBOX"])
    assert changed >= 5
    assert second.progress["flags_updated"] == changed

    third = run(source, target, tmp_path / "s.db", sync_deletions=True)
    assert third.progress["messages_deleted"] == 2
    assert third.progress["messages_copied"] == 0
    assert content(snapshot(dovecot_dot, target_user)) == content(snapshot(dovecot_slash, user))


def test_uidvalidity_reset_on_source_copies_nothing_twice(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, tmp_path: Path
) -> None:
    user, password = new_user(dovecot_slash)
    target_user, _ = new_user(dovecot_dot)
    fill(dovecot_slash, user, {"Reset": 15})
    source = source_endpoint(dovecot_slash, user, password)
    target = imap_target(dovecot_dot, target_user)
    run(source, target, tmp_path / "s.db")

    with client(dovecot_slash, user) as imap:
        old = imap.folder_status("Reset", ["UIDVALIDITY"])[b"UIDVALIDITY"]
        imap.rename_folder("Reset", "Reset-old")
        new = old
        while new == old:  # Dovecot derives UIDVALIDITY from the clock
            imap.create_folder("Reset")
            new = imap.folder_status("Reset", ["UIDVALIDITY"])[b"UIDVALIDITY"]
            if new == old:
                imap.delete_folder("Reset")
        imap.select_folder("Reset-old")
        imap.copy(imap.search("ALL"), "Reset")
        imap.close_folder()
        imap.delete_folder("Reset-old")
    deliver(dovecot_slash, user, "Reset", make_message(77, folder="Reset"))

    report = run(source, target, tmp_path / "s.db")
    assert report.outcome is Outcome.SYNCED, report.error
    assert report.progress["messages_copied"] == 1
    assert content(snapshot(dovecot_dot, target_user)) == content(snapshot(dovecot_slash, user))
    again = run(source, target, tmp_path / "s.db")
    assert again.progress["messages_copied"] == 0


class TargetWithoutUidplus(ImapTarget):
    """A real Dovecot target whose UIDPLUS is ignored, as with servers that lack it."""

    def __init__(self, endpoint: ImapEndpoint) -> None:
        super().__init__(endpoint)
        self.session.capabilities = self.session.capabilities - {"UIDPLUS"}


def test_target_without_uidplus_is_mapped_by_fingerprint(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, tmp_path: Path
) -> None:
    user, password = new_user(dovecot_slash)
    target_user, _ = new_user(dovecot_dot)
    fill(dovecot_slash, user, {"INBOX": 25})
    twins = [Mail(make_message(1, with_message_id=False), (), datetime.datetime(2020, 1, 1, tzinfo=UTC))] * 2
    fill(dovecot_slash, user, {"Twins": twins})  # identical messages must still map one to one
    source = source_endpoint(dovecot_slash, user, password)
    endpoint = master_endpoint(dovecot_dot, target_user)
    first = run(source, lambda: TargetWithoutUidplus(endpoint), tmp_path / "s.db")
    assert first.outcome is Outcome.SYNCED, first.error
    with client(dovecot_slash, user) as imap:
        imap.select_folder("INBOX")
        imap.set_flags(imap.search("ALL")[:4], ["\\Flagged", "Later"])
    second = run(source, lambda: TargetWithoutUidplus(endpoint), tmp_path / "s.db")
    assert second.progress["messages_copied"] == 0
    assert second.progress["flags_updated"] == 4
    assert content(snapshot(dovecot_dot, target_user)) == content(snapshot(dovecot_slash, user))
    store = Store(tmp_path / "s.db")
    try:
        mailbox = store.mailbox("mailbox")
        refs = {
            folder: [m.target_ref for m in store.mapped(mailbox, folder, _uidvalidity(dovecot_slash, user, folder)).values()]
            for folder in ("INBOX", "Twins")
        }
    finally:
        store.close()
    # every copy found its target UID, and the two identical messages got one each
    assert sorted(refs["INBOX"], key=int) == [str(uid) for uid in range(1, 26)]
    assert sorted(refs["Twins"]) == ["1", "2"]


def _uidvalidity(server: DovecotServer, user: str, folder: str) -> int:
    with client(server, user) as imap:
        return int(imap.folder_status(folder, ["UIDVALIDITY"])[b"UIDVALIDITY"])


def test_progress_is_readable_while_the_sync_runs(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, tmp_path: Path
) -> None:
    user, password = new_user(dovecot_slash)
    target_user, _ = new_user(dovecot_dot)
    fill(dovecot_slash, user, {"INBOX": 2500, "Archive": 500}, size=4000)
    created = threading.Event()
    holder: dict[str, Any] = {}

    def work() -> None:  # a Store belongs to the thread that opened it
        store = Store(tmp_path / "s.db")
        holder["sync"] = MailboxSync(
            source_endpoint(dovecot_slash, user, password), imap_target(dovecot_dot, target_user), store, "m",
            SyncOptions(chunk_messages=50),
        )
        created.set()
        holder["report"] = holder["sync"].run()
        store.close()

    worker = threading.Thread(target=work)
    worker.start()
    created.wait(10)
    seen: list[dict[str, Any]] = []
    while worker.is_alive():
        seen.append(holder["sync"].progress.snapshot())
        time.sleep(0.005)
    worker.join()
    midway = [p for p in seen if 0 < p["messages_copied"] < 3000]
    assert midway, "no snapshot caught the copy in progress"
    assert all(p["messages_total"] == 3000 and p["bytes_total"] == 3000 * 4000 for p in midway)
    assert all(p["current_folder"] in ("INBOX", "Archive") for p in midway)
    copied = [p["messages_copied"] for p in seen]
    assert copied == sorted(copied)  # counters only grow
    assert holder["report"].progress["messages_copied"] == 3000


# --------------------------------------------------------------------------- folders


def test_special_folders_exclusions_and_odd_names(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, tmp_path: Path
) -> None:
    user, password = new_user(dovecot_slash)
    target_user, _ = new_user(dovecot_dot)
    fill(
        dovecot_slash,
        user,
        {
            "INBOX": 3,
            "Sent Items": 4,
            "Deleted Items": 2,
            "Junk E-mail": 2,
            "Éléments envoyés": 1,
            "Dr. Jones": 2,
            "Projects": 1,
            "Projects/Old": 1,
            "Keep": 1,
            "Keep/Child": 1,
            "#Notes#": 1,
        },
    )
    report = run(
        source_endpoint(dovecot_slash, user, password),
        imap_target(dovecot_dot, target_user),
        tmp_path / "s.db",
        exclude=("projects/*", "Keep", "#JunkEmail#", "\\#Notes\\#"),
    )
    assert report.outcome is Outcome.SYNCED, report.error
    target_snap = content(snapshot(dovecot_dot, target_user))
    source_snap = content(snapshot(dovecot_slash, user))
    # Special folders keep their names (the target has no folder carrying \\Sent or \\Trash yet),
    # and two folders of one role are never merged.
    assert sorted(target_snap) == ["Deleted Items", "Dr_ Jones", "INBOX", "Keep/Child", "Sent Items", "Éléments envoyés"]
    for name in ("Sent Items", "Éléments envoyés", "Deleted Items"):
        assert target_snap[name] == source_snap[name]
    assert target_snap["Dr_ Jones"] == source_snap["Dr. Jones"]
    excluded = {e["source"]: e["pattern"] for e in report.excluded}
    assert excluded == {
        "Projects": "projects/*", "Projects/Old": "projects/*", "Keep": "Keep",
        "Junk E-mail": "#JunkEmail#", "#Notes#": "\\#Notes\\#",
    }
    notes = {f["source"]: f.get("note") for f in report.folders}
    assert "Dr_ Jones" in (notes["Dr. Jones"] or "")
    with client(dovecot_dot, target_user) as imap:
        listed = {name: set(flags) for flags, _, name in imap.list_folders()}
    assert "INBOX.Sent" not in listed and "INBOX.Trash" not in listed  # nothing renamed to the usual names


def test_user_root_maps_a_subtree_as_the_mailbox(
    dovecot_dot: DovecotServer, dovecot_slash: DovecotServer, new_user: NewUser, tmp_path: Path
) -> None:
    admin, password = new_user(dovecot_dot)
    target_user, _ = new_user(dovecot_slash)
    fill(dovecot_dot, admin, {"INBOX": 2, "users/terry": 3, "users/terry/Sent": 2, "users/terry/Reports": 1, "users/ann": 4})
    report = run(
        source_endpoint(dovecot_dot, admin, password),
        imap_target(dovecot_slash, target_user),
        tmp_path / "s.db",
        user_root="users/terry",
    )
    assert report.outcome is Outcome.SYNCED, report.error
    source_snap = snapshot(dovecot_dot, admin)
    assert content(snapshot(dovecot_slash, target_user)) == {
        "INBOX": source_snap["users/terry"],
        "Sent": source_snap["users/terry/Sent"],
        "Reports": source_snap["users/terry/Reports"],
    }
    assert [w for w in report.warnings if "\\Seen per user" in w], report.warnings


# --------------------------------------------------------------------------- limits


def test_large_items_over_the_engine_limit_are_skipped_and_reported(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, tmp_path: Path
) -> None:
    user, password = new_user(dovecot_slash)
    target_user, _ = new_user(dovecot_dot)
    fill(dovecot_slash, user, {"INBOX": 5})
    when = datetime.datetime(2015, 6, 7, 8, 9, 10, tzinfo=UTC)
    deliver(dovecot_slash, user, "INBOX", make_message(600, size=300_000, subject="Big report"), internaldate=when)
    source = source_endpoint(dovecot_slash, user, password)
    target = imap_target(dovecot_dot, target_user)

    failed = run(source, target, tmp_path / "s.db", max_item_size=100_000)
    assert failed.outcome is Outcome.FAILED
    assert "1 large items, more than LargeItemLimit 0 allows" in (failed.error or "")
    [item] = failed.skipped_items
    assert (item.folder, item.kind, item.subject, item.size) == ("INBOX", "LargeItem", "Big report", 300_000)
    assert "over the 100000-byte limit" in item.reason

    accepted = run(source, target, tmp_path / "s.db", max_item_size=100_000, large_item_limit=1)
    assert accepted.outcome is Outcome.SYNCED, accepted.error
    assert len(snapshot(dovecot_dot, target_user)["INBOX"]) == 5
    assert [s.subject for s in accepted.skipped_items] == ["Big report"]


class TargetWithoutLiteralPlus(ImapTarget):
    """A real Dovecot target driven without LITERAL+: each literal waits for the server's go-ahead."""

    def __init__(self, endpoint: ImapEndpoint) -> None:
        super().__init__(endpoint)
        self.session.capabilities = self.session.capabilities - {"LITERAL+"}


@pytest.mark.parametrize("target_class", [ImapTarget, TargetWithoutLiteralPlus])
def test_target_refusing_an_oversized_message_counts_a_large_item(
    dovecot_slash: DovecotServer, dovecot_small: DovecotServer, new_user: NewUser, tmp_path: Path,
    target_class: type[ImapTarget],
) -> None:
    user, password = new_user(dovecot_slash)
    target_user, _ = new_user(dovecot_small)
    fill(dovecot_slash, user, {"INBOX": 6})
    deliver(dovecot_slash, user, "INBOX", make_message(700, size=1_500_000, subject="Too big for the target"))
    fill(dovecot_slash, user, {"INBOX": [make_message(701 + i) for i in range(3)]})
    endpoint = master_endpoint(dovecot_small, target_user)
    report = run(
        source_endpoint(dovecot_slash, user, password), lambda: target_class(endpoint), tmp_path / "s.db",
        large_item_limit=1,
    )
    assert report.outcome is Outcome.SYNCED, report.error
    [item] = report.skipped_items
    assert item.kind == "LargeItem" and item.subject == "Too big for the target"
    assert "[LIMIT]" in item.reason
    source_inbox = snapshot(dovecot_slash, user)["INBOX"]
    assert len(snapshot(dovecot_small, target_user)["INBOX"]) == len(source_inbox) - 1 == 9


def test_message_the_source_cannot_deliver_is_a_bad_item(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, tmp_path: Path
) -> None:
    user, password = new_user(dovecot_slash)
    target_user, _ = new_user(dovecot_dot)
    fill(dovecot_slash, user, {"INBOX": 8})
    broken = deliver(dovecot_slash, user, "INBOX", make_message(800, subject="Corrupt on disk"))
    # A wrong size in the Maildir file name makes Dovecot drop the connection on every read.
    assert ",S=" in broken.name
    os.rename(broken, str(broken).replace(",S=", ",S=9"))
    source = source_endpoint(dovecot_slash, user, password)
    target = imap_target(dovecot_dot, target_user)
    failed = run(source, target, tmp_path / "s.db", backoff_start=0.01)
    assert failed.outcome is Outcome.FAILED
    assert "1 bad items, more than BadItemLimit 0 allows" in (failed.error or "")
    [item] = failed.skipped_items
    assert item.kind == "BadItem" and item.folder == "INBOX" and item.uid == 9
    assert "failed each time it sent the message" in item.reason  # unreadable, even its subject
    report = run(source, target, tmp_path / "s.db", bad_item_limit=1, backoff_start=0.01)
    assert report.outcome is Outcome.SYNCED, report.error
    assert len(snapshot(dovecot_dot, target_user)["INBOX"]) == 8


def test_message_the_target_refuses_is_a_bad_item(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, tmp_path: Path
) -> None:
    """Dovecot refuses to APPEND an empty message ("Can't save a zero byte message"); a source can
    hold one. It is skipped as a bad item, reported, and counted against BadItemLimit; the
    messages around it in the same MULTIAPPEND chunk are still copied."""
    user, password = new_user(dovecot_slash)
    target_user, _ = new_user(dovecot_dot)
    fill(dovecot_slash, user, {"INBOX": 5})
    deliver(dovecot_slash, user, "INBOX", b"", internaldate=datetime.datetime(2018, 3, 4, 5, 6, 7, tzinfo=UTC))
    fill(dovecot_slash, user, {"INBOX": [make_message(820 + i) for i in range(4)]})
    source = source_endpoint(dovecot_slash, user, password)
    target = imap_target(dovecot_dot, target_user)

    failed = run(source, target, tmp_path / "s.db")
    assert failed.outcome is Outcome.FAILED
    assert "1 bad items, more than BadItemLimit 0 allows" in (failed.error or "")
    [item] = failed.skipped_items
    assert (item.kind, item.folder, item.uid, item.size) == ("BadItem", "INBOX", 6, 0)
    assert "refused" in item.reason.lower(), item.reason

    accepted = run(source, target, tmp_path / "s.db", bad_item_limit=1)
    assert accepted.outcome is Outcome.SYNCED, accepted.error
    source_inbox = snapshot(dovecot_slash, user)["INBOX"]
    assert len(snapshot(dovecot_dot, target_user)["INBOX"]) == len(source_inbox) - 1 == 9
    assert set(snapshot(dovecot_dot, target_user)["INBOX"]) < set(source_inbox)


# --------------------------------------------------------------------------- logins and TLS


def test_master_user_login_string_and_authzid_both_work(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, tmp_path: Path
) -> None:
    user, _ = new_user(dovecot_slash)
    target_user, _ = new_user(dovecot_dot)
    fill(dovecot_slash, user, {"INBOX": 4})
    source = source_endpoint(dovecot_slash, f"{user}*{dovecot_slash.master_user}", dovecot_slash.master_password)
    report = run(source, imap_target(dovecot_dot, target_user), tmp_path / "s.db")
    assert report.outcome is Outcome.SYNCED, report.error
    assert content(snapshot(dovecot_dot, target_user)) == content(snapshot(dovecot_slash, user))
    # Outlook Live's documentation writes it Admin*User (seed 000); Dovecot wants User*Admin.
    seed_style = source_endpoint(dovecot_slash, f"{dovecot_slash.master_user}*{user}", dovecot_slash.master_password)
    with ImapSession(seed_style) as session:
        assert session.select("INBOX", readonly=True).exists == 4


def test_wrong_password_fails_the_mailbox_without_showing_it(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, tmp_path: Path
) -> None:
    user, _ = new_user(dovecot_slash)
    target_user, _ = new_user(dovecot_dot)
    report = run(source_endpoint(dovecot_slash, user, "Wrong-Pa$$word1"), imap_target(dovecot_dot, target_user), tmp_path / "s.db")
    assert report.outcome is Outcome.FAILED
    assert "refused the credentials" in (report.error or "")
    assert "Wrong-Pa$$word1" not in repr(report.as_dict())
    with pytest.raises(AuthenticationFailed):
        ImapSession(source_endpoint(dovecot_slash, user, "Wrong-Pa$$word1"))


@pytest.mark.parametrize("security", [Security.SSL, Security.TLS])
def test_self_signed_certificates_are_refused_unless_accepted(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, tmp_path: Path, security: Security
) -> None:
    user, password = new_user(dovecot_slash)
    target_user, _ = new_user(dovecot_dot)
    fill(dovecot_slash, user, {"INBOX": 2})
    port = dovecot_slash.ssl_port if security is Security.SSL else dovecot_slash.port
    strict = ImapEndpoint(host="localhost", port=port, security=security, user=user, password=password)
    with pytest.raises(CertificateRejected, match="not trusted"):
        ImapSession(strict)
    refused = run(strict, imap_target(dovecot_dot, target_user), tmp_path / "s.db")
    assert refused.outcome is Outcome.FAILED and "accept untrusted certificates" in (refused.error or "")
    lenient = ImapEndpoint(host="localhost", port=port, security=security, user=user, password=password,
                           accept_untrusted_certificates=True)
    accepted = run(lenient, imap_target(dovecot_dot, target_user), tmp_path / "s.db")
    assert accepted.outcome is Outcome.SYNCED, accepted.error
    assert accepted.progress["messages_copied"] == 2


# --------------------------------------------------------------------------- Maildir target


def test_maildir_target_is_read_back_exactly_through_dovecot(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, tmp_path: Path
) -> None:
    user, password = new_user(dovecot_slash)
    reader, _ = new_user(dovecot_dot)
    fill(dovecot_slash, user, {"INBOX": 25, "Sent": 4, "Archive/2020": 6, "Entwürfe/Alt": 2})
    deliver(dovecot_slash, user, "INBOX", make_message(910), flags=("\\Seen", "$Forwarded", "Work"))
    maildir = dovecot_dot.maildir(reader)
    source = source_endpoint(dovecot_slash, user, password)
    report = run(source, lambda: MaildirTarget(maildir), tmp_path / "s.db")
    assert report.outcome is Outcome.SYNCED, report.error
    with client(dovecot_slash, user) as imap:
        imap.select_folder("INBOX")
        imap.add_flags(imap.search("UNFLAGGED")[:2], ["\\Flagged"])
    deliver(dovecot_slash, user, "Sent", make_message(911, folder="Sent"))
    again = run(source, lambda: MaildirTarget(maildir), tmp_path / "s.db")
    assert again.progress["messages_copied"] == 1 and again.progress["flags_updated"] == 2
    give_tree(dovecot_dot, maildir)
    assert content(snapshot(dovecot_dot, reader)) == content(snapshot(dovecot_slash, user))
    with client(dovecot_dot, reader) as imap:
        subscribed = {name for _, _, name in imap.list_sub_folders()}
    assert subscribed == {"INBOX.Sent", "INBOX.Archive.2020", "INBOX.Entwürfe.Alt"}  # the source's (fill subscribes)


# --------------------------------------------------------------------------- CONDSTORE


def test_flag_changes_are_found_with_condstore_changedsince(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A re-sync asks the source only for the flags changed since the last HIGHESTMODSEQ, and
    asks nothing at all when the folder's HIGHESTMODSEQ did not move."""
    user, password = new_user(dovecot_slash)
    target_user, _ = new_user(dovecot_dot)
    fill(dovecot_slash, user, {"INBOX": 300})
    source = source_endpoint(dovecot_slash, user, password)
    target = imap_target(dovecot_dot, target_user)
    asked: list[tuple[int | None, int, int]] = []  # (CHANGEDSINCE, UIDs asked about, rows the source sent)
    real_fetch_flags = ImapSession.fetch_flags

    def spy(self: ImapSession, uids: Sequence[int], changed_since: int | None) -> dict[int, Any]:
        rows = real_fetch_flags(self, uids, changed_since)
        asked.append((changed_since, len(uids), len(rows)))
        return rows

    monkeypatch.setattr(ImapSession, "fetch_flags", spy)
    run(source, target, tmp_path / "s.db")
    with client(dovecot_slash, user) as imap:
        assert b"CONDSTORE" in imap.capabilities()
        imap.select_folder("INBOX")
        uids = imap.search("ALL")
        imap.add_flags(uids[10:13], ["\\Flagged"])
        imap.remove_flags(uids[200:201], ["\\Seen"])
        imap.add_flags(uids[200:201], ["\\Answered"])

    asked.clear()
    second = run(source, target, tmp_path / "s.db")
    assert second.progress["flags_updated"] == 4
    [(changed_since, asked_about, sent)] = asked
    assert changed_since is not None and changed_since > 0  # CHANGEDSINCE <the recorded HIGHESTMODSEQ>
    assert asked_about == 300 and sent == 4  # the source sent only the changed messages' flags
    assert content(snapshot(dovecot_dot, target_user)) == content(snapshot(dovecot_slash, user))

    asked.clear()
    third = run(source, target, tmp_path / "s.db")
    assert third.progress["flags_updated"] == 0
    assert asked == []  # HIGHESTMODSEQ unchanged: no flag FETCH at all


class _Watched(ImapTarget):
    """A real IMAP target that notes each APPEND command (messages per command, start and end)
    and is slow to append, so that the fetching side can be seen working meanwhile."""

    def __init__(self, endpoint: ImapEndpoint, log: list[tuple[str, float, int]]) -> None:
        super().__init__(endpoint)
        self._log = log
        start = self.session.start_append

        def watched(folder: str, messages: Sequence[Any], *, on_sent: Any = None) -> Callable[[], list[int | None]]:
            log.append(("append-start", time.monotonic(), len(messages)))
            time.sleep(0.3)
            answer = start(folder, messages, on_sent=on_sent)

            def answered() -> list[int | None]:
                try:
                    return answer()
                finally:
                    log.append(("append-end", time.monotonic(), len(messages)))

            return answered

        self.session.start_append = watched  # type: ignore[method-assign]


def test_chunks_go_out_as_multiappends_while_the_next_chunk_is_fetched(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, tmp_path: Path
) -> None:
    user, password = new_user(dovecot_slash)
    fill(dovecot_slash, user, {"INBOX": 150})
    target_user, _ = new_user(dovecot_dot)
    events: list[tuple[str, float, int]] = []
    endpoint = master_endpoint(dovecot_dot, target_user)
    original = ImapSession.fetch_bodies

    def fetch_bodies(session: ImapSession, uids: Sequence[int]) -> dict[int, bytes]:
        events.append(("fetch-start", time.monotonic(), len(uids)))
        return original(session, uids)

    ImapSession.fetch_bodies = fetch_bodies  # type: ignore[method-assign]
    try:
        report = run(source_endpoint(dovecot_slash, user, password), lambda: _Watched(endpoint, events),
                     tmp_path / "state.db", chunk_messages=50)
    finally:
        ImapSession.fetch_bodies = original  # type: ignore[method-assign]
    assert report.outcome is Outcome.SYNCED and report.progress["messages_copied"] == 150
    appends = [e for e in events if e[0] == "append-start"]
    assert [n for _, _, n in appends] == [50, 50, 50]  # three MULTIAPPEND commands, not 150 APPENDs
    probe = ImapSession(endpoint)
    try:
        assert "MULTIAPPEND" in probe.capabilities
    finally:
        probe.close()
    fetches = [t for kind, t, _ in events if kind == "fetch-start"]
    first_append_end = next(t for kind, t, _ in events if kind == "append-end")
    # The second chunk's bodies were being fetched while the first chunk was still being appended.
    assert len(fetches) == 3 and fetches[1] < first_append_end
    assert content(snapshot(dovecot_dot, f"{target_user}*{dovecot_dot.master_user}",
                            dovecot_dot.master_password)) == content(snapshot(dovecot_slash, user))


def test_the_next_folder_is_fetched_while_the_last_chunk_of_a_folder_is_appended(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, tmp_path: Path
) -> None:
    user, password = new_user(dovecot_slash)
    fill(dovecot_slash, user, {"INBOX": 30, "Archive": 20, "Projekte": 10})
    target_user, _ = new_user(dovecot_dot)
    events: list[tuple[str, float, int]] = []
    endpoint = master_endpoint(dovecot_dot, target_user)
    original = ImapSession.fetch_bodies

    def fetch_bodies(session: ImapSession, uids: Sequence[int]) -> dict[int, bytes]:
        events.append(("fetch-start", time.monotonic(), len(uids)))
        return original(session, uids)

    ImapSession.fetch_bodies = fetch_bodies  # type: ignore[method-assign]
    try:
        source = source_endpoint(dovecot_slash, user, password)
        report = run(source, lambda: _Watched(endpoint, events), tmp_path / "state.db")
        again = run(source, lambda: _Watched(endpoint, events), tmp_path / "state.db")
    finally:
        ImapSession.fetch_bodies = original  # type: ignore[method-assign]
    assert report.outcome is Outcome.SYNCED and report.progress["messages_copied"] == 60
    assert again.outcome is Outcome.SYNCED and again.progress["messages_copied"] == 0
    fetches = [t for kind, t, _ in events if kind == "fetch-start"]
    ends = [t for kind, t, _ in events if kind == "append-end"]
    assert len(fetches) == 3 and len(ends) == 3  # one chunk per folder, nothing fetched again
    # Each folder's bodies were fetched while the previous folder's chunk was still being appended.
    assert fetches[1] < ends[0] and fetches[2] < ends[1]
    assert content(snapshot(dovecot_dot, f"{target_user}*{dovecot_dot.master_user}",
                            dovecot_dot.master_password)) == content(snapshot(dovecot_slash, user))
