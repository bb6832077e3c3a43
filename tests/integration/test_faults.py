"""Faults between the engine and the servers: dropped connections, throttling, SIGKILL."""

from __future__ import annotations

import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from engine.imap import ImapEndpoint, OutgoingMessage, Security
from engine.store import Store
from engine.sync import MailboxSync, MemoryBudget, SyncOptions
from engine.targets import Target
from tests.conftest import NewProxy, NewUser
from tests.integration.test_sync import content, give_tree, imap_target, run
from tests.servers.dovecot import DovecotServer
from tests.servers.mailbox import Mail, client, fill, make_message, snapshot
from tests.servers.proxy import BYE_TOO_MANY

pytestmark = pytest.mark.integration


def test_dropped_connections_are_resumed_and_the_copy_is_exact(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, fault_proxy: NewProxy, tmp_path: Path
) -> None:
    user, password = new_user(dovecot_slash)
    target_user, _ = new_user(dovecot_dot)
    fill(dovecot_slash, user, {"INBOX": 300, "Work": 60}, size=4000)
    proxy = fault_proxy(dovecot_slash.host, dovecot_slash.port)
    proxy.cut_after_bytes = 250_000  # every source connection dies after 250 kB
    source = ImapEndpoint(host=proxy.host, port=proxy.port, security=Security.NONE, user=user, password=password)
    report = run(source, imap_target(dovecot_dot, target_user), tmp_path / "s.db", backoff_start=0.01, reconnect_attempts=20)
    assert report.outcome == "Synced", report.error
    assert proxy.cuts >= 4
    assert content(snapshot(dovecot_dot, target_user)) == content(snapshot(dovecot_slash, user))
    assert report.skipped_items == []


def test_syncs_sharing_one_memory_budget_copy_exactly_and_give_every_byte_back(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, fault_proxy: NewProxy, tmp_path: Path
) -> None:
    """Two mailboxes copied at once by one process share its budget of bodies in memory: a
    budget smaller than one chunk, messages larger than the whole budget, connections cut
    mid-copy on one side. Both copies are exact, and nothing stays held afterwards (bytes of
    chunks dropped by a lost connection are given back, or the other sync would wait forever)."""
    budget = MemoryBudget(40_000)
    pairs = []
    for n in range(2):
        user, password = new_user(dovecot_slash)
        target_user, _ = new_user(dovecot_dot)
        fill(dovecot_slash, user, {
            "INBOX": 120, "Work": 40,
            "Big": [make_message(i, size=150_000 + 20_000 * n, folder="Big") for i in range(3)],
        }, size=3000)
        pairs.append((user, password, target_user))
    proxy = fault_proxy(dovecot_slash.host, dovecot_slash.port)
    proxy.cut_after_bytes = 200_000  # the first mailbox's source connections die after 200 kB
    reports: dict[int, Any] = {}

    def sync(n: int) -> None:
        user, password, target_user = pairs[n]
        host, port = (proxy.host, proxy.port) if n == 0 else (dovecot_slash.host, dovecot_slash.port)
        source = ImapEndpoint(host=host, port=port, security=Security.NONE, user=user, password=password)
        store = Store(tmp_path / "state.db")  # one database, one connection per thread
        try:
            options = SyncOptions(chunk_bytes=16_000, backoff_start=0.01, reconnect_attempts=30)
            reports[n] = MailboxSync(source, imap_target(dovecot_dot, target_user), store, f"m{n}", options,
                                     memory=budget).run()
        finally:
            store.close()

    threads = [threading.Thread(target=sync, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert proxy.cuts >= 3
    for n, (user, _, target_user) in enumerate(pairs):
        assert reports[n].outcome == "Synced", reports[n].error
        assert content(snapshot(dovecot_dot, target_user)) == content(snapshot(dovecot_slash, user))
    assert budget.used == 0


def test_throttled_logins_pause_and_retry_instead_of_failing(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, fault_proxy: NewProxy,
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    user, password = new_user(dovecot_slash)
    target_user, _ = new_user(dovecot_dot)
    fill(dovecot_slash, user, {"INBOX": 5})
    proxy = fault_proxy(dovecot_slash.host, dovecot_slash.port)
    proxy.greet_next(2, BYE_TOO_MANY)
    source = ImapEndpoint(host=proxy.host, port=proxy.port, security=Security.NONE, user=user, password=password)
    with caplog.at_level(logging.WARNING, logger="engine.sync"):
        report = run(source, imap_target(dovecot_dot, target_user), tmp_path / "s.db", throttle_max_pause=0.05)
    assert report.outcome == "Synced", report.error
    assert proxy.greeted == 2
    assert sum("throttled" in r.getMessage() and "Too many simultaneous connections" in r.getMessage() for r in caplog.records) == 2
    assert content(snapshot(dovecot_dot, target_user)) == content(snapshot(dovecot_slash, user))


@pytest.mark.parametrize(
    ("answer", "pause"),
    [
        (b"NO [THROTTLED] Request is throttled. Suggested Backoff Time: 400 milliseconds", 0.4),
        (b"NO [THROTTLED] Mailbox is busy, try again later", None),
        (b"NO [UNAVAILABLE] Too many simultaneous connections", None),
    ],
    ids=["suggested-backoff", "throttled", "too-many-connections"],
)
def test_throttled_commands_mid_copy_pause_and_resume(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, fault_proxy: NewProxy,
    tmp_path: Path, caplog: pytest.LogCaptureFixture, answer: bytes, pause: float | None,
) -> None:
    """A server that throttles FETCHes in the middle of a session: the sync pauses as asked
    (the suggested backoff, or its default pause), resumes, and the copy is exact."""
    user, password = new_user(dovecot_slash)
    target_user, _ = new_user(dovecot_dot)
    fill(dovecot_slash, user, {"INBOX": 40, "Work": 10})
    proxy = fault_proxy(dovecot_slash.host, dovecot_slash.port)
    proxy.answer_next(2, "UID FETCH", answer)
    source = ImapEndpoint(host=proxy.host, port=proxy.port, security=Security.NONE, user=user, password=password)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="engine.sync"):
        report = run(source, imap_target(dovecot_dot, target_user), tmp_path / "s.db", throttle_max_pause=0.5)
    elapsed = time.monotonic() - started
    assert report.outcome == "Synced", report.error
    assert proxy.answered == 2
    waits = [r.getMessage() for r in caplog.records if "throttled" in r.getMessage()]
    assert len(waits) == 2 and all(answer.decode()[3:] in w for w in waits), waits
    if pause is not None:
        assert all(f"pausing {pause:.1f} s" in w for w in waits), waits
        assert elapsed >= 2 * pause
    assert report.skipped_items == []
    assert content(snapshot(dovecot_dot, target_user)) == content(snapshot(dovecot_slash, user))


def _recorded(state: Path) -> int:
    """Messages the state database records as copied (0 while it is being created)."""
    if not state.exists():
        return 0
    db = sqlite3.connect(state, timeout=5)
    try:
        return int(db.execute("SELECT count(*) FROM message_map").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


def _count(server: DovecotServer, user: str) -> int:
    total = 0
    with client(server, user) as imap:
        for flags, _, name in imap.list_folders():
            if b"\\Noselect" not in flags:
                total += int(imap.folder_status(name, ["MESSAGES"])[b"MESSAGES"])
    return total


@pytest.mark.parametrize("target_kind", ["imap", "maildir"])
def test_sigkill_at_random_moments_never_duplicates_or_loses(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, tmp_path: Path, target_kind: str
) -> None:
    user, password = new_user(dovecot_slash)
    target_user, target_password = new_user(dovecot_dot)
    big = [Mail(make_message(5000 + i, size=150_000, folder="Big"), ("\\Seen",)) for i in range(40)]
    fill(dovecot_slash, user, {"INBOX": 3000, "Archive/2020": 1500, "Big": big}, size=3000)
    total = 3000 + 1500 + 40
    env = dict(os.environ, MAILSHIFT_SOURCE_PASSWORD=password, MAILSHIFT_TARGET_PASSWORD=dovecot_dot.master_password)
    command = [
        sys.executable, "-m", "engine.cli", "sync",
        "--source-host", dovecot_slash.host, "--source-port", str(dovecot_slash.port), "--source-security", "None",
        "--source-user", user, "--state", str(tmp_path / "state.db"),
    ]
    reader, _ = new_user(dovecot_dot)
    maildir = dovecot_dot.maildir(reader)  # read back through Dovecot at the end
    if target_kind == "imap":
        command += [
            "--target-host", dovecot_dot.host, "--target-port", str(dovecot_dot.port), "--target-security", "None",
            "--target-user", dovecot_dot.master_user, "--target-authzid", target_user,
        ]
    else:
        command += ["--target-maildir", str(maildir)]

    def copied() -> int:
        if target_kind == "imap":
            return _count(dovecot_dot, target_user)
        return sum(len(files) for folder, _, files in os.walk(maildir) if folder.endswith(("cur", "new")))

    # Ten kills at random moments of the copy, whatever the machine's speed: each process is
    # killed once the recorded copies pass a random point of the mailbox (the first one may be
    # killed before it copied anything), after a further random 0-60 ms, so that the kill
    # lands anywhere: between chunks, inside an APPEND, or while a chunk is being recorded.
    seed = random.randrange(1 << 30)
    partial = kill_at_random_moments(command, env, tmp_path / "state.db", 10, total - 1000, seed, copied)
    finished = subprocess.run(command + ["--json"], env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, (seed, finished.stdout, finished.stderr)
    assert all(0 <= n < total for n in partial), (seed, partial)  # every kill landed mid-copy, no duplicate
    if target_kind == "imap":
        got = snapshot(dovecot_dot, target_user)
    else:
        give_tree(dovecot_dot, maildir)
        got = snapshot(dovecot_dot, reader)
    assert content(got) == content(snapshot(dovecot_slash, user)), seed
    assert sum(len(m) for m in got.values()) == total


def kill_at_random_moments(
    command: list[str], env: dict[str, str], state: Path, kills: int, span: int, seed: int,
    after_each: Callable[[], int] = lambda: 0,
) -> list[int]:
    """Run ``command`` ``kills`` times, each killed with SIGKILL once the state database records
    a random number of copies below ``span`` and a further random 0-60 ms: the kill lands
    anywhere, between chunks, inside an APPEND, or while a chunk is being recorded.

    Returns:
        What ``after_each`` measured after each kill.
    """
    rng = random.Random(seed)
    measured = []
    for point in sorted(rng.randrange(0, span) for _ in range(kills)):
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while _recorded(state) < point and process.poll() is None:
            assert time.monotonic() < deadline, (seed, point)
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.06))
        assert process.poll() is None, (seed, point, "the copy ended before its kill")
        process.send_signal(signal.SIGKILL)
        process.wait()
        measured.append(after_each())
    return measured


class _Died(BaseException):
    """Stands for the sync process dying (nothing of the engine catches it)."""


class _DyingTarget:
    """An IMAP target whose process dies right after sending a whole APPEND; with ``late``, the
    server commits that APPEND a moment later, as a real server does for a client that is gone."""

    def __init__(self, inner: Target, factory: Callable[[], Target], late: bool) -> None:
        self._inner, self._factory, self._late = inner, factory, late
        self.committer: threading.Thread | None = None

    def start_append(self, folder: str, messages: Sequence[OutgoingMessage],
                     on_sent: Callable[[], None] | None = None) -> Callable[[], list[str | None]]:
        if self._late:
            assert on_sent is not None
            on_sent()

            def commit_later() -> None:
                time.sleep(1.5)
                other = self._factory()
                try:
                    other.append(folder, messages)
                finally:
                    other.close()

            self.committer = threading.Thread(target=commit_later)
            self.committer.start()
        raise _Died()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.mark.parametrize("late", [True, False], ids=["sent-then-died", "died-before-sending"])
def test_an_append_committed_after_its_client_died_is_not_copied_twice(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, tmp_path: Path, late: bool
) -> None:
    user, password = new_user(dovecot_slash)
    fill(dovecot_slash, user, {"INBOX": 30})
    target_user, _ = new_user(dovecot_dot)
    source = ImapEndpoint(host=dovecot_slash.host, port=dovecot_slash.port, security=Security.NONE, user=user,
                          password=password)
    real = imap_target(dovecot_dot, target_user)
    dying: list[_DyingTarget] = []

    def first_target() -> Target:
        dying.append(_DyingTarget(real(), real, late))
        return dying[-1]

    store = Store(tmp_path / "state.db")
    try:
        with pytest.raises(_Died):
            MailboxSync(source, first_target, store, "k").run()
        started = time.monotonic()
        report = MailboxSync(source, real, store, "k").run()
        waited = time.monotonic() - started
    finally:
        store.close()
        for target in dying:
            if target.committer is not None:
                target.committer.join()
    assert report.outcome.value == "Synced"
    got = content(snapshot(dovecot_dot, target_user))
    assert got == content(snapshot(dovecot_slash, user)) and len(got["INBOX"]) == 30
    if late:
        # The second run waited for the dead run's transaction and found its 30 messages there.
        assert report.progress["messages_copied"] == 0 and waited >= 1.0
    else:
        # Nothing was sent in full: no waiting, the chunk is simply copied.
        assert report.progress["messages_copied"] == 30 and waited < 1.0
