"""Never a duplicate, never a lost message: lost state, altering targets, refusals, bad links.

Each test copies between real Dovecot servers, some through :class:`ImapQuirkProxy`, which
changes what passes the way other servers and networks do (capabilities missing, messages
altered on APPEND, APPENDs refused, connections cut). What is checked is what an administrator
checks: messages per folder, their content (compared as :func:`engine.messages.body_digest`
does where the target is known to alter bytes, and reported so), flags and dates.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from engine.imap import ImapEndpoint, Security
from engine.maildir import MaildirTarget
from engine.matching import DATE_REPLACED, HEADERS_REWRITTEN, LINE_END_ADDED
from engine.messages import body_digest
from engine.sync import Outcome
from engine.targets import ImapTarget, Target
from tests.conftest import NewQuirkProxy, NewUser
from tests.integration.test_cyrus import cyrus_target
from tests.integration.test_faults import kill_at_random_moments
from tests.integration.test_sync import give_tree, imap_target, run, source_endpoint
from tests.servers.cyrus import CyrusServer
from tests.servers.dovecot import DovecotServer
from tests.servers.imap_proxy import APPEND_TIME, ImapQuirkProxy
from tests.servers.mailbox import AnyServer, Mail, _logical, client, fill, make_message

pytestmark = pytest.mark.integration

#: Folder (logical path) -> sorted (normalised body digest, flags) of its messages.
Contents = dict[str, list[tuple[str, frozenset[str]]]]


def contents(server: AnyServer, user: str) -> Contents:
    """Every selectable folder's messages as :func:`engine.messages.body_digest` sees them
    (line ends, a trailing line end and rewritten 8-bit header bytes do not count), with flags."""
    out: Contents = {}
    with client(server, user) as imap:
        for flags, delimiter, name in imap.list_folders():
            if b"\\Noselect" in flags or b"\\NonExistent" in flags:
                continue
            imap.select_folder(name, readonly=True)
            uids = imap.search("ALL")
            rows: list[tuple[str, frozenset[str]]] = []
            for start in range(0, len(uids), 200):
                for data in imap.fetch(uids[start : start + 200], ["BODY.PEEK[]", "FLAGS"]).values():
                    kept = frozenset(f.decode() for f in data[b"FLAGS"] if f.lower() != b"\\recent")
                    rows.append((body_digest(data[b"BODY[]"]), kept))
            if rows:
                out[_logical(server, name if isinstance(name, str) else name.decode(), delimiter)] = sorted(rows)
    return out


def dates(server: AnyServer, user: str, folder: str = "INBOX") -> list[int]:
    with client(server, user) as imap:
        imap.select_folder(folder, readonly=True)
        return sorted(int(d[b"INTERNALDATE"].timestamp()) for d in imap.fetch(imap.search("ALL"), ["INTERNALDATE"]).values())


def _dated(mails: list[Mail]) -> list[Mail]:
    """The messages with internal dates one hour apart from 2021-02-03 (not the time of the test,
    which a target stamping the time of the APPEND would give them too)."""
    start = datetime(2021, 2, 3, tzinfo=timezone.utc)
    return [Mail(m.raw, m.flags, start + timedelta(hours=n)) for n, m in enumerate(mails)]


def corpus(n: int = 120) -> dict[str, list[Mail]]:
    """Messages that make matching by content hard: byte-identical duplicates, messages without
    Message-ID that share every identifying header, raw 8-bit header bytes, no final line end."""
    inbox = [Mail(make_message(i, size=1500 + 37 * i), ("\\Seen",) if i % 3 else ()) for i in range(n)]
    duplicate = make_message(9000, size=3000)
    inbox += [Mail(duplicate, ("\\Seen",))] * 3
    alike = make_message(9100, size=2500, with_message_id=False)
    inbox += [Mail(alike[:-12] + f"variant {k:03d}".encode()) for k in range(4)]
    inbox += [Mail(make_message(9150, size=2200, with_message_id=False))] * 2
    eight_bit = make_message(9200).replace(b"Subject: Message 9200 in INBOX", "Subject: Grüße aus Zürich".encode())
    inbox += [Mail(eight_bit, ("Work",)), Mail(make_message(9300, size=2001).rstrip(b"\r\n"), ("\\Flagged",))]
    archive = [Mail(make_message(i, size=4000, folder="Archive/2020")) for i in range(40)]
    return {"INBOX": _dated(inbox), "Archive/2020": _dated(archive)}


def _total(spec: dict[str, list[Mail]]) -> int:
    return sum(len(mails) for mails in spec.values())


def _through(proxy: ImapQuirkProxy, server: DovecotServer, user: str) -> Callable[[], Target]:
    """The target reached through a proxy, with the master user acting as ``user``."""
    endpoint = ImapEndpoint(host=proxy.host, port=proxy.port, security=Security.NONE,
                            user=server.master_user, authzid=user, password=server.master_password)
    return lambda: ImapTarget(endpoint)


def _forget(state: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{state}{suffix}").unlink(missing_ok=True)


@pytest.fixture
def altering(dovecot_dot: DovecotServer, quirk_proxy: NewQuirkProxy) -> Iterator[ImapQuirkProxy]:
    """A proxy in front of the '.' Dovecot that alters what it stores, as other servers do: a
    line end added to a message lacking one (mbox stores), the APPEND's date replaced by the
    time of the APPEND, raw 8-bit header bytes made ``X`` (Cyrus)."""
    proxy = quirk_proxy(dovecot_dot.host, dovecot_dot.port)
    proxy.add_trailing_crlf = True
    proxy.replace_internaldate = APPEND_TIME
    proxy.munge_header_8bit = True
    yield proxy


@pytest.mark.parametrize("kind", ["imap", "maildir", "altering", "cyrus"])
def test_a_lost_state_database_copies_nothing_twice(
    kind: str, dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser,
    altering: ImapQuirkProxy, tmp_path: Path, request: pytest.FixtureRequest,
) -> None:
    user, password = new_user(dovecot_slash)
    spec = corpus()
    fill(dovecot_slash, user, spec)
    total = _total(spec)
    source = source_endpoint(dovecot_slash, user, password)
    server: AnyServer = request.getfixturevalue("cyrus") if kind == "cyrus" else dovecot_dot
    target_user, _ = new_user(server)
    target: Callable[[], Target]
    if isinstance(server, CyrusServer):  # rewrites 8-bit header bytes as X (munge8bit)
        target = cyrus_target(server, target_user)
    elif kind == "maildir":
        maildir = dovecot_dot.maildir(target_user)
        target = lambda: MaildirTarget(maildir)  # noqa: E731
    elif kind == "altering":
        target = _through(altering, dovecot_dot, target_user)
    else:
        target = imap_target(dovecot_dot, target_user)

    def on_target() -> Contents:
        if kind == "maildir":
            give_tree(dovecot_dot, dovecot_dot.maildir(target_user))
        return contents(server, target_user)

    first = run(source, target, tmp_path / "state.db", key="mailbox")
    assert first.outcome is Outcome.SYNCED, first.error
    assert first.progress["messages_copied"] == total
    assert on_target() == contents(dovecot_slash, user)

    # Since then: flags changed on the source, and the state database is lost; the copy is
    # run again under another name (another spelling of the source host, a batch made again).
    with client(dovecot_slash, user) as imap:
        imap.select_folder("INBOX")
        imap.add_flags(imap.search("ALL")[:10], ["\\Flagged", "Later"])
    _forget(tmp_path / "state.db")
    again = run(source, target, tmp_path / "state.db", key="another spelling")
    assert again.outcome is Outcome.SYNCED, again.error
    assert again.progress["messages_copied"] == 0
    assert again.progress["messages_found"] == total
    assert on_target() == contents(dovecot_slash, user)

    # New mail, then the state lost once more: only the new message is copied.
    fill(dovecot_slash, user, {"INBOX": _dated([Mail(make_message(9999), ("\\Answered",))])})
    _forget(tmp_path / "state.db")
    third = run(source, target, tmp_path / "state.db", key="third")
    assert (third.progress["messages_copied"], third.progress["messages_found"]) == (1, total)
    assert on_target() == contents(dovecot_slash, user)
    if kind == "altering":
        summary = third.alteration_summary()
        assert summary[DATE_REPLACED] == total + 1
        assert summary[LINE_END_ADDED] >= 1 and summary[HEADERS_REWRITTEN] == 1
    elif kind == "cyrus":
        assert third.alteration_summary() == {HEADERS_REWRITTEN: 1}
    else:
        assert third.altered == [], "an exact target is reported as exact"


def test_another_spelling_of_the_source_host_continues_the_copy(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, tmp_path: Path
) -> None:
    """``mailshift sync`` keys its state by the mailbox and its target, not by how the source
    host was written: 127.0.0.1 then localhost (then another port, through a proxy) continue
    one copy."""
    user, password = new_user(dovecot_slash)
    fill(dovecot_slash, user, {"INBOX": 30, "Work": 10})
    target_user, _ = new_user(dovecot_dot)
    env = dict(os.environ, MAILSHIFT_SOURCE_PASSWORD=password, MAILSHIFT_TARGET_PASSWORD=dovecot_dot.master_password)

    def sync(host: str) -> dict[str, Any]:
        import json

        done = subprocess.run(
            [sys.executable, "-m", "engine.cli", "sync", "--source-host", host, "--source-port", str(dovecot_slash.port),
             "--source-security", "None", "--source-user", user, "--state", str(tmp_path / "state.db"),
             "--target-host", dovecot_dot.host, "--target-port", str(dovecot_dot.port), "--target-security", "None",
             "--target-user", dovecot_dot.master_user, "--target-authzid", target_user, "--json"],
            env=env, capture_output=True, text=True, timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))

    assert sync("127.0.0.1")["messages_copied"] == 40
    assert sync("localhost")["messages_copied"] == 0
    assert contents(dovecot_dot, target_user) == contents(dovecot_slash, user)


def test_flag_changes_reach_copies_stored_without_appenduid(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, altering: ImapQuirkProxy,
    tmp_path: Path,
) -> None:
    """A target without UIDPLUS that also changes what it stores (size, date): each copy is
    found by content after its APPEND, so the flag changes of the next sync reach all of them."""
    altering.strip_capabilities = {"UIDPLUS"}
    user, password = new_user(dovecot_slash)
    mails = [Mail(make_message(i, size=1800 + i).rstrip(b"\r\n")) for i in range(100)]
    fill(dovecot_slash, user, {"INBOX": mails})
    target_user, _ = new_user(dovecot_dot)
    source, target = source_endpoint(dovecot_slash, user, password), _through(altering, dovecot_dot, target_user)
    first = run(source, target, tmp_path / "s.db")
    assert first.outcome is Outcome.SYNCED, first.error
    assert first.alteration_summary()[LINE_END_ADDED] == 100
    assert not any(name.startswith("APPENDUID") for name in altering.commands)
    with client(dovecot_slash, user) as imap:
        imap.select_folder("INBOX")
        imap.add_flags(imap.search("ALL"), ["\\Flagged", "$Important"])
    second = run(source, target, tmp_path / "s.db")
    assert second.progress["flags_updated"] == 100 and second.progress["messages_copied"] == 0
    got = contents(dovecot_dot, target_user)["INBOX"]
    assert all(flags == {"\\Flagged", "$Important"} for _, flags in got)
    assert got == contents(dovecot_slash, user)["INBOX"]


@pytest.mark.parametrize("limit", [5, 0], ids=["within-limit", "over-limit"])
def test_refused_messages_are_tried_again_and_only_they_are_left_out(
    limit: int, dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser,
    quirk_proxy: NewQuirkProxy, tmp_path: Path,
) -> None:
    """The target refuses two messages of a 60-message MULTIAPPEND: the chunk is tried again in
    halves, so only those two are left out. Within BadItemLimit the mailbox is Synced; over it
    the mailbox fails, yet everything else is copied. The next sync, the target taking them
    now, copies the two and the skipped-item report is empty."""
    user, password = new_user(dovecot_slash)
    mails = [Mail(make_message(i, size=2000, subject="Poison" if i in (17, 44) else None)) for i in range(60)]
    fill(dovecot_slash, user, {"INBOX": mails, "Work": 20})
    target_user, _ = new_user(dovecot_dot)
    proxy = quirk_proxy(dovecot_dot.host, dovecot_dot.port)
    refusing = True
    proxy.refuse_append(lambda message: refusing and b"Subject: Poison" in message)
    source, target = source_endpoint(dovecot_slash, user, password), _through(proxy, dovecot_dot, target_user)

    first = run(source, target, tmp_path / "s.db", bad_item_limit=limit)
    assert [(s.folder, s.subject) for s in first.skipped_items] == [("INBOX", "Poison"), ("INBOX", "Poison")]
    if limit:
        assert first.outcome is Outcome.SYNCED, first.error
    else:
        assert first.outcome is Outcome.FAILED and "BadItemLimit 0" in (first.error or "")
    copied = contents(dovecot_dot, target_user)
    assert (len(copied["INBOX"]), len(copied["Work"])) == (58, 20)
    # halving: a handful of APPENDs for two bad messages, never one per message
    assert proxy.refused_appends <= 14 and len(proxy.appends) <= 30

    refusing = False
    second = run(source, target, tmp_path / "s.db", bad_item_limit=limit)
    assert second.outcome is Outcome.SYNCED, second.error
    assert second.skipped_items == [] and second.progress["messages_copied"] == 2
    assert contents(dovecot_dot, target_user) == contents(dovecot_slash, user)

    third = run(source, target, tmp_path / "s.db", bad_item_limit=limit)
    assert third.progress["messages_copied"] == 0 and third.skipped_items == []


@pytest.mark.parametrize("side", ["target", "source"])
def test_a_link_cut_every_megabyte_still_finishes_exact(
    side: str, dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser,
    quirk_proxy: NewQuirkProxy, tmp_path: Path,
) -> None:
    """Connections die after 0.5-2 MB (both directions counted), on the way to the target or
    from the source. Chunks shrink after a cut, only attempts without progress count, and
    the copy ends exact; an APPEND cut after it was sent in full is settled at the folder's
    end (the grace is shortened here: the proxy never delivers such an APPEND)."""
    user, password = new_user(dovecot_slash)
    big = [Mail(make_message(500 + i, size=300_000, folder="Big"), ("\\Seen",)) for i in range(6)]
    fill(dovecot_slash, user, {"INBOX": 300, "Big": big}, size=20_000)
    target_user, _ = new_user(dovecot_dot)
    server = dovecot_dot if side == "target" else dovecot_slash
    proxy = quirk_proxy(server.host, server.port)
    proxy.cut_every(500_000, 2_000_000, seed=random.randrange(1 << 30))
    if side == "target":
        source, target = source_endpoint(dovecot_slash, user, password), _through(proxy, dovecot_dot, target_user)
    else:
        source = ImapEndpoint(host=proxy.host, port=proxy.port, security=Security.NONE, user=user, password=password)
        target = imap_target(dovecot_dot, target_user)
    report = run(source, target, tmp_path / "s.db", backoff_start=0.01, backoff_max=0.05, late_commit_grace=1.0)
    assert report.outcome is Outcome.SYNCED, report.error
    assert len(proxy.cut_points) >= 3
    assert report.skipped_items == []
    got, want = contents(dovecot_dot, target_user), contents(dovecot_slash, user)
    assert {k: len(v) for k, v in got.items()} == {k: len(v) for k, v in want.items()}
    assert got == want
    if side == "target":
        assert min(size for size, _ in proxy.appends) < 1_000_000  # smaller APPENDs after the cuts


def test_a_stalled_connection_is_given_up_and_the_copy_resumed(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, quirk_proxy: NewQuirkProxy,
    tmp_path: Path,
) -> None:
    """The target goes silent mid-copy for 3 s (no bytes either way), longer than the client's
    1 s timeout: the folder is resumed on a new connection. The APPEND held up in the silence is
    delivered when it ends, after the client gave up: the engine waits for it (default grace)
    instead of copying its messages a second time, and the copy is exact."""
    user, password = new_user(dovecot_slash)
    fill(dovecot_slash, user, {"INBOX": 200}, size=5000)
    target_user, _ = new_user(dovecot_dot)
    proxy = quirk_proxy(dovecot_dot.host, dovecot_dot.port)
    proxy.stall(after_bytes=300_000, seconds=3.0)
    endpoint = ImapEndpoint(host=proxy.host, port=proxy.port, security=Security.NONE, user=dovecot_dot.master_user,
                            authzid=target_user, password=dovecot_dot.master_password, timeout=1.0)
    report = run(source_endpoint(dovecot_slash, user, password), lambda: ImapTarget(endpoint), tmp_path / "s.db",
                 backoff_start=0.01)
    assert report.outcome is Outcome.SYNCED, report.error
    assert proxy.stalls >= 1
    got, want = contents(dovecot_dot, target_user), contents(dovecot_slash, user)
    assert len(got["INBOX"]) == len(want["INBOX"]) == 200
    assert got == want


def test_sigkill_at_random_moments_against_an_altering_target_never_duplicates(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, altering: ImapQuirkProxy,
    tmp_path: Path,
) -> None:
    """The target adds a line end, replaces dates and rewrites 8-bit headers: pending messages
    are found on it by content after each kill, never copied twice."""
    user, password = new_user(dovecot_slash)
    mails = [Mail(make_message(i, size=2000 + i % 500).rstrip(b"\r\n"), ("\\Seen",) if i % 2 else ()) for i in range(1500)]
    fill(dovecot_slash, user, {"INBOX": mails, "Archive": 500}, size=3000)
    total = 2000
    target_user, _ = new_user(dovecot_dot)
    env = dict(os.environ, MAILSHIFT_SOURCE_PASSWORD=password, MAILSHIFT_TARGET_PASSWORD=dovecot_dot.master_password)
    command = [
        sys.executable, "-m", "engine.cli", "sync",
        "--source-host", dovecot_slash.host, "--source-port", str(dovecot_slash.port), "--source-security", "None",
        "--source-user", user, "--state", str(tmp_path / "state.db"),
        "--target-host", altering.host, "--target-port", str(altering.port), "--target-security", "None",
        "--target-user", dovecot_dot.master_user, "--target-authzid", target_user,
    ]
    seed = random.randrange(1 << 30)
    kill_at_random_moments(command, env, tmp_path / "state.db", 6, total - 400, seed)
    finished = subprocess.run(command + ["--json"], env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, (seed, finished.stdout, finished.stderr)
    got = contents(dovecot_dot, target_user)
    assert got == contents(dovecot_slash, user), seed
    assert sum(len(m) for m in got.values()) == total


def test_an_exact_target_is_called_exact_and_an_altering_one_is_named(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, altering: ImapQuirkProxy,
    tmp_path: Path,
) -> None:
    user, password = new_user(dovecot_slash)
    mails = [Mail(make_message(i, size=1000 + i).rstrip(b"\r\n") + b"\r\n") for i in range(20)]
    mails += [Mail(make_message(100 + i, size=1000).rstrip(b"\r\n")) for i in range(5)]
    fill(dovecot_slash, user, {"INBOX": _dated(mails)})
    source = source_endpoint(dovecot_slash, user, password)
    exact_user, _ = new_user(dovecot_dot)
    exact = run(source, imap_target(dovecot_dot, exact_user), tmp_path / "exact.db")
    assert exact.outcome is Outcome.SYNCED and exact.altered == []
    assert exact.as_dict()["altered"] == {}
    altered_user, _ = new_user(dovecot_dot)
    altering.munge_header_8bit = False
    changed = run(source, _through(altering, dovecot_dot, altered_user), tmp_path / "altered.db")
    assert changed.outcome is Outcome.SYNCED, changed.error
    assert changed.alteration_summary() == {DATE_REPLACED: 25, LINE_END_ADDED: 5}
    assert dates(dovecot_dot, exact_user) == dates(dovecot_slash, user) != dates(dovecot_dot, altered_user)
    line = next(a for a in changed.altered if LINE_END_ADDED in a.kinds)
    size = len(mails[line.uid - 1].raw)
    assert f"size {size} -> {size + 2} bytes" in line.detail


def test_the_mbox_target_adds_line_ends_and_is_reported_not_duplicated(
    dovecot_slash: DovecotServer, dovecot_mbox: DovecotServer, new_user: NewUser, tmp_path: Path
) -> None:
    """A real server that alters: Dovecot's mbox storage adds a line end to a message that has
    none. A SIGKILL-free re-run after losing the state finds every copy."""
    user, password = new_user(dovecot_slash)
    mails = [Mail(make_message(i, size=1500 + i).rstrip(b"\r\n")) for i in range(30)]
    fill(dovecot_slash, user, {"INBOX": mails, "Work": 10})
    target_user, _ = new_user(dovecot_mbox)
    source, target = source_endpoint(dovecot_slash, user, password), imap_target(dovecot_mbox, target_user)
    first = run(source, target, tmp_path / "s.db")
    assert first.outcome is Outcome.SYNCED, first.error
    assert first.alteration_summary() == {LINE_END_ADDED: 40}  # generated messages end mid-line too
    _forget(tmp_path / "s.db")
    again = run(source, target, tmp_path / "s.db")
    assert again.progress["messages_copied"] == 0 and again.progress["messages_found"] == 40
    assert contents(dovecot_mbox, target_user) == contents(dovecot_slash, user)

