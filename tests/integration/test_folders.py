"""The folder tree against real Dovecot servers: names a target refuses, special folders kept
apart, \\Noselect parents, subscriptions mirrored (the rules are in engine/folders.py)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.imap import ImapEndpoint, Security
from engine.maildir import MaildirTarget
from engine.store import Store
from engine.sync import MailboxSync, Outcome, SyncOptions, SyncReport
from engine.targets import ImapTarget, Target
from tests.conftest import NewProxy, NewUser
from tests.servers.cyrus import CyrusServer
from tests.servers.dovecot import DovecotServer
from tests.servers.mailbox import Mail, Snapshot, client, fill, make_message, snapshot

pytestmark = pytest.mark.integration


# --------------------------------------------------------------------------- helpers


def source_endpoint(server: DovecotServer, user: str) -> ImapEndpoint:
    return ImapEndpoint(host=server.host, port=server.port, security=Security.NONE, user=user,
                        password=server.users[user])


def imap_target(server: DovecotServer, user: str, port: int | None = None) -> Callable[[], Target]:
    """The target user reached as the master user acting for ``user`` (through ``port`` if given)."""
    endpoint = ImapEndpoint(host=server.host, port=port or server.port, security=Security.NONE,
                            user=server.master_user, authzid=user, password=server.master_password)
    return lambda: ImapTarget(endpoint)


def run(source: ImapEndpoint, target: Callable[[], Target], state: Path, **options: Any) -> SyncReport:
    store = Store(state)
    try:
        return MailboxSync(source, target, store, "mailbox", SyncOptions(**options)).run()
    finally:
        store.close()


def mails(folder: str, count: int) -> list[Mail]:
    """Messages ending in CRLF (an mbox target adds one to a message without), flagged alike."""
    out = []
    for i in range(count):
        raw = make_message(i, folder=folder, size=1500)
        out.append(Mail(raw if raw.endswith(b"\r\n") else raw + b"\r\n", ("\\Seen",) if i % 2 else ()))
    return out


def content(snap: Snapshot) -> Snapshot:
    """The folders holding messages (hierarchy-only parents exist on one side only)."""
    return {name: messages for name, messages in snap.items() if messages}


def renamed(snap: Snapshot, names: dict[str, str]) -> Snapshot:
    return {names.get(name, name): messages for name, messages in snap.items()}


def folder_map(report: SyncReport) -> dict[str, str]:
    return {f["source"]: f["target"] for f in report.folders}


def notes(report: SyncReport) -> dict[str, str]:
    return {f["source"]: f["note"] for f in report.folders if "note" in f}


def attributes(server: DovecotServer, user: str) -> dict[str, set[str]]:
    """Every folder the target lists, with its attributes (as text)."""
    with client(server, user) as imap:
        return {name: {flag.decode() for flag in flags} for flags, _, name in imap.list_folders()}


def subscribed(server: DovecotServer, user: str) -> set[str]:
    """What LSUB shows."""
    with client(server, user) as imap:
        return {name for _, _, name in imap.list_sub_folders()}


def give_tree(server: DovecotServer, root: Path) -> None:
    """Hand a Maildir written by the test process to the server's mail user."""
    server.give(root)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            server.give(Path(folder) / name)


# --------------------------------------------------------------------------- names the target refuses


@pytest.mark.parametrize("target_kind", ["slash_dots", "dot", "maildir"])
def test_a_dot_in_a_folder_name_becomes_an_underscore_on_targets_that_refuse_it(
    request: pytest.FixtureRequest, dovecot_slash: DovecotServer, dovecot_dot: DovecotServer,
    new_user: NewUser, tmp_path: Path, target_kind: str,
) -> None:
    """``a.b`` from a '/' server: a Maildir++ target with '/' as separator refuses the '.' on
    CREATE (the rule renames it), a '.' target and the Maildir target have '.' as delimiter
    (replaced when planning); every message copied, the new name in the report, exit Synced."""
    user, _ = new_user(dovecot_slash)
    fill(dovecot_slash, user, {"INBOX": mails("INBOX", 3), "a.b": mails("a.b", 4), "a.b/c": mails("a.b/c", 1),
                               "x%y*z": mails("x%y*z", 2)})
    if target_kind == "maildir":
        reader_server = dovecot_dot
        reader, _ = new_user(dovecot_dot)
        maildir = dovecot_dot.maildir(reader)
        target: Callable[[], Target] = lambda: MaildirTarget(maildir)  # noqa: E731
    else:
        reader_server = request.getfixturevalue(f"dovecot_{target_kind}")
        reader, _ = new_user(reader_server)
        target = imap_target(reader_server, reader)

    report = run(source_endpoint(dovecot_slash, user), target, tmp_path / "s.db")

    assert report.outcome is Outcome.SYNCED, (report.error, report.folder_errors)
    prefix = "INBOX." if target_kind == "dot" else ""
    delimiter = "/" if target_kind == "slash_dots" else "."
    assert folder_map(report)["a.b"] == f"{prefix}a_b"
    assert folder_map(report)["a.b/c"] == f"{prefix}a_b{delimiter}c"  # the child follows its parent
    assert "'a_b'" in notes(report)["a.b"]
    if target_kind == "slash_dots":
        assert "refused 'a.b'" in notes(report)["a.b"]
    assert report.progress["messages_copied"] == 10
    if target_kind == "maildir":
        give_tree(dovecot_dot, maildir)
    expected = renamed(content(snapshot(dovecot_slash, user)), {"a.b": "a_b", "a.b/c": "a_b/c"})
    assert content(snapshot(reader_server, reader)) == expected  # counts, bodies, flags, dates

    fill(dovecot_slash, user, {"Later": mails("Later", 2)})  # a new folder: planned again
    again = run(source_endpoint(dovecot_slash, user), target, tmp_path / "s.db")
    assert again.outcome is Outcome.SYNCED
    assert again.progress["messages_copied"] == 2
    assert folder_map(again)["a.b"] == f"{prefix}a_b" and "'a_b'" in notes(again)["a.b"]


def test_a_nested_tree_onto_mbox_storage_becomes_siblings_where_folders_cannot_have_children(
    dovecot_slash: DovecotServer, dovecot_mbox: DovecotServer, new_user: NewUser, tmp_path: Path
) -> None:
    """Dovecot mbox: a folder holding mail is \\NoInferiors, so "Projects/2024" below the
    mbox "Projects" is refused with [CANNOT] and becomes "Projects_2024" (and its child
    "Projects_2024_Q1"); a child of a \\Noselect parent is created by its full name and the
    server makes the parent; every message is copied and the run is Synced."""
    user, _ = new_user(dovecot_slash)
    target_user, _ = new_user(dovecot_mbox)
    fill(dovecot_slash, user, {
        "INBOX": mails("INBOX", 2), "Projects": mails("Projects", 3), "Projects/2024": mails("Projects/2024", 4),
        "Projects/2024/Q1": mails("Projects/2024/Q1", 1), "Archive/2019": mails("Archive/2019", 2),
    })
    assert "\\Noselect" in attributes(dovecot_slash, user)["Archive"]  # made by CREATE Archive/2019

    report = run(source_endpoint(dovecot_slash, user), imap_target(dovecot_mbox, target_user), tmp_path / "s.db")

    assert report.outcome is Outcome.SYNCED, (report.error, report.folder_errors)
    assert folder_map(report) == {
        "INBOX": "INBOX", "Archive/2019": "Archive.2019", "Projects": "Projects",
        "Projects/2024": "Projects_2024", "Projects/2024/Q1": "Projects_2024_Q1",
    }
    assert "inferior" in notes(report)["Projects/2024"] and "'Projects_2024'" in notes(report)["Projects/2024"]
    listed = attributes(dovecot_mbox, target_user)
    assert "\\NoInferiors" in listed["Projects"] and "\\Noselect" in listed["Archive"]
    expected = renamed(content(snapshot(dovecot_slash, user)),
                       {"Projects/2024": "Projects_2024", "Projects/2024/Q1": "Projects_2024_Q1"})
    assert content(snapshot(dovecot_mbox, target_user)) == expected
    assert report.progress["messages_copied"] == 12


def test_a_folder_that_cannot_be_created_is_a_folder_error_and_the_rest_is_copied(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, tmp_path: Path,
    fault_proxy: NewProxy,
) -> None:
    """The target refuses one CREATE for a reason the rule cannot fix: that folder is a folder
    error (SyncedWithErrors, named), its child is created on its own, the rest is copied; the
    next run tries it again and copies it."""
    user, _ = new_user(dovecot_slash)
    target_user, _ = new_user(dovecot_dot)
    fill(dovecot_slash, user, {"INBOX": mails("INBOX", 2), "Blocked": mails("Blocked", 3),
                               "Blocked/Child": mails("Blocked/Child", 2), "Work": mails("Work", 2)})
    proxy = fault_proxy(dovecot_dot.host, dovecot_dot.port)
    proxy.answer_next(1, "CREATE", b"NO [CANNOT] Refused by site policy")
    target = imap_target(dovecot_dot, target_user, port=proxy.port)

    report = run(source_endpoint(dovecot_slash, user), target, tmp_path / "s.db")

    assert proxy.answered == 1
    assert report.outcome is Outcome.SYNCED_WITH_ERRORS, report.error
    [error] = report.folder_errors
    assert "'Blocked'" in error and "Refused by site policy" in error
    assert folder_map(report) == {"INBOX": "INBOX", "Blocked/Child": "INBOX.Blocked.Child", "Work": "INBOX.Work"}
    source_snap = content(snapshot(dovecot_slash, user))
    copied = content(snapshot(dovecot_dot, target_user))
    assert copied == {name: source_snap[name] for name in ("INBOX", "Blocked/Child", "Work")}

    again = run(source_endpoint(dovecot_slash, user), target, tmp_path / "s.db")
    assert again.outcome is Outcome.SYNCED and again.folder_errors == []
    assert again.progress["messages_copied"] == 3
    assert content(snapshot(dovecot_dot, target_user)) == source_snap


# --------------------------------------------------------------------------- special folders


def test_two_sent_folders_of_one_source_stay_two_folders(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, tmp_path: Path
) -> None:
    """No merge by role: "Sent Items" and "Sent Messages" (and "Deleted Items" beside "Trash")
    land in folders of their own, each with its own messages."""
    user, _ = new_user(dovecot_slash)
    target_user, _ = new_user(dovecot_dot)
    fill(dovecot_slash, user, {"INBOX": mails("INBOX", 1), "Sent Items": mails("Sent Items", 3),
                               "Sent Messages": mails("Sent Messages", 2), "Trash": mails("Trash", 1),
                               "Deleted Items": mails("Deleted Items", 2)})

    report = run(source_endpoint(dovecot_slash, user), imap_target(dovecot_dot, target_user), tmp_path / "s.db")

    assert report.outcome is Outcome.SYNCED, report.error
    assert folder_map(report) == {
        "INBOX": "INBOX", "Deleted Items": "INBOX.Deleted Items", "Sent Items": "INBOX.Sent Items",
        "Sent Messages": "INBOX.Sent Messages", "Trash": "INBOX.Trash",
    }
    assert content(snapshot(dovecot_dot, target_user)) == content(snapshot(dovecot_slash, user))
    # the target gives \Trash to "Trash" by configuration: the source's "Trash" is its trash
    assert "\\Trash" in attributes(dovecot_dot, target_user)["INBOX.Trash"]


def test_special_folders_keep_their_names_and_get_the_attribute_the_target_gives_them(
    dovecot_slash: DovecotServer, dovecot_special: DovecotServer, new_user: NewUser, tmp_path: Path
) -> None:
    """The target's configuration gives \\Trash and \\Junk to "Deleted Items" and "Junk Mail":
    the source's folders keep those names (not renamed to Trash or Junk) and carry the
    attributes once created."""
    user, _ = new_user(dovecot_slash)
    target_user, _ = new_user(dovecot_special)
    fill(dovecot_slash, user, {"INBOX": mails("INBOX", 1), "Deleted Items": mails("Deleted Items", 2),
                               "Junk Mail": mails("Junk Mail", 3)})

    report = run(source_endpoint(dovecot_slash, user), imap_target(dovecot_special, target_user), tmp_path / "s.db")

    assert report.outcome is Outcome.SYNCED, report.error
    assert folder_map(report) == {"INBOX": "INBOX", "Deleted Items": "Deleted Items", "Junk Mail": "Junk Mail"}
    listed = attributes(dovecot_special, target_user)
    assert "\\Trash" in listed["Deleted Items"] and "\\Junk" in listed["Junk Mail"]
    assert not {"Trash", "Junk"} & set(listed)
    assert content(snapshot(dovecot_special, target_user)) == content(snapshot(dovecot_slash, user))


def test_the_marked_sent_folder_lands_in_the_targets_sent_and_the_other_keeps_its_name(
    dovecot_special: DovecotServer, dovecot_slash: DovecotServer, new_user: NewUser, tmp_path: Path
) -> None:
    """Source: "Sent Items" marked \\Sent and "Sent Messages"; target: "Sent" marked \\Sent.
    The marked one goes to "Sent", the other keeps its name; later runs (also ones that plan
    again) land in the same folders and copy nothing."""
    user, _ = new_user(dovecot_special)
    target_user, _ = new_user(dovecot_slash)
    fill(dovecot_special, user, {"INBOX": mails("INBOX", 1), "Sent Items": mails("Sent Items", 3),
                                 "Sent Messages": mails("Sent Messages", 2)})
    fill(dovecot_slash, target_user, {"Sent": 0})
    assert "\\Sent" in attributes(dovecot_special, user)["Sent Items"]
    assert "\\Sent" in attributes(dovecot_slash, target_user)["Sent"]
    source, target, state = source_endpoint(dovecot_special, user), imap_target(dovecot_slash, target_user), tmp_path / "s.db"

    first = run(source, target, state)

    assert first.outcome is Outcome.SYNCED, first.error
    expected_map = {"INBOX": "INBOX", "Sent Items": "Sent", "Sent Messages": "Sent Messages"}
    assert folder_map(first) == expected_map
    expected = renamed(content(snapshot(dovecot_special, user)), {"Sent Items": "Sent"})
    assert content(snapshot(dovecot_slash, target_user)) == expected
    before = attributes(dovecot_slash, target_user)

    second = run(source, target, state)
    with client(dovecot_special, user) as imap:
        imap.subscribe_folder("Sent Messages")  # a changed subscription: the third run plans again
    third = run(source, target, state)

    for later in (second, third):
        assert later.outcome is Outcome.SYNCED and folder_map(later) == expected_map
        assert later.progress["messages_copied"] == 0
    assert attributes(dovecot_slash, target_user) == before
    assert content(snapshot(dovecot_slash, target_user)) == expected


# --------------------------------------------------------------------------- subscriptions


@pytest.mark.parametrize("target_kind", ["imap", "maildir"])
def test_subscriptions_are_the_sources_and_noselect_parents_stay_hierarchy(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, tmp_path: Path, target_kind: str
) -> None:
    """Source: INBOX and A subscribed, B not, P a \\Noselect parent of the subscribed P/C.
    Target LSUB: exactly INBOX, A and P/C; P is not a real folder; B, which the target had
    subscribed, ends unsubscribed. A subscription changed on the source is carried next run."""
    user, _ = new_user(dovecot_slash)
    reader, _ = new_user(dovecot_dot)
    fill(dovecot_slash, user, {"INBOX": mails("INBOX", 1), "A": mails("A", 1), "B": mails("B", 1),
                               "P/C": mails("P/C", 1)})
    with client(dovecot_slash, user) as imap:
        imap.subscribe_folder("INBOX")
        imap.unsubscribe_folder("B")
    assert subscribed(dovecot_slash, user) == {"INBOX", "A", "P/C"}
    assert "\\Noselect" in attributes(dovecot_slash, user)["P"]
    if target_kind == "maildir":
        maildir = dovecot_dot.maildir(reader)
        target: Callable[[], Target] = lambda: MaildirTarget(maildir)  # noqa: E731
    else:
        fill(dovecot_dot, reader, {"B": 0})  # created and subscribed by the target beforehand
        target = imap_target(dovecot_dot, reader)

    def read_back() -> tuple[set[str], dict[str, set[str]]]:
        if target_kind == "maildir":
            give_tree(dovecot_dot, maildir)
        return subscribed(dovecot_dot, reader), attributes(dovecot_dot, reader)

    first = run(source_endpoint(dovecot_slash, user), target, tmp_path / "s.db")

    assert first.outcome is Outcome.SYNCED, first.error
    lsub, listed = read_back()
    assert lsub == {"INBOX", "INBOX.A", "INBOX.P.C"}
    assert "INBOX.P" not in listed or "\\Noselect" in listed["INBOX.P"]  # hierarchy only
    assert content(snapshot(dovecot_dot, reader)) == content(snapshot(dovecot_slash, user))

    with client(dovecot_slash, user) as imap:
        imap.unsubscribe_folder("A")
        imap.subscribe_folder("B")
    second = run(source_endpoint(dovecot_slash, user), target, tmp_path / "s.db")

    assert second.outcome is Outcome.SYNCED and second.progress["messages_copied"] == 0
    assert read_back()[0] == {"INBOX", "INBOX.B", "INBOX.P.C"}


def test_a_target_offering_create_special_use_gets_the_attribute_with_the_folder(
    dovecot_slash: DovecotServer, cyrus: CyrusServer, new_user: NewUser, tmp_path: Path
) -> None:
    """Cyrus offers CREATE-SPECIAL-USE: "Sent Items" (the source's sent folder by name) keeps its
    name and is created with \\Sent, "Sent Messages" is an ordinary folder; the next run, planning
    again, finds "Sent Items" by its attribute (same folders, nothing copied)."""
    user, _ = new_user(dovecot_slash)
    target_user, target_password = new_user(cyrus)
    fill(dovecot_slash, user, {"INBOX": mails("INBOX", 1), "Sent Items": mails("Sent Items", 2),
                               "Sent Messages": mails("Sent Messages", 1), "Junk E-mail": mails("Junk E-mail", 1)})
    endpoint = ImapEndpoint(host=cyrus.host, port=cyrus.port, security=Security.NONE,
                            user=cyrus.admin, authzid=target_user, password=cyrus.admin_password)
    source, state = source_endpoint(dovecot_slash, user), tmp_path / "s.db"
    with client(cyrus, target_user, target_password) as imap:
        assert b"CREATE-SPECIAL-USE" in imap.capabilities()

    first = run(source, lambda: ImapTarget(endpoint), state)

    assert first.outcome is Outcome.SYNCED, (first.error, first.folder_errors)
    expected_map = {"INBOX": "INBOX", "Junk E-mail": "INBOX.Junk E-mail", "Sent Items": "INBOX.Sent Items",
                    "Sent Messages": "INBOX.Sent Messages"}
    assert folder_map(first) == expected_map
    with client(cyrus, target_user, target_password) as imap:
        listed = {name: {flag.decode() for flag in flags} for flags, _, name in imap.list_folders()}
    assert "\\Sent" in listed["INBOX.Sent Items"] and "\\Junk" in listed["INBOX.Junk E-mail"]
    assert "\\Sent" not in listed["INBOX.Sent Messages"]

    with client(dovecot_slash, user) as imap:
        imap.unsubscribe_folder("Sent Messages")  # the next run plans again
    second = run(source, lambda: ImapTarget(endpoint), state)
    assert second.outcome is Outcome.SYNCED and folder_map(second) == expected_map
    assert second.progress["messages_copied"] == 0
