"""The state database: schema, upgrade refusal, and the chunk records."""

import sqlite3
import time
from pathlib import Path

import pytest

from engine.errors import StateError
from engine.store import Altered, SCHEMA_VERSION, Mapped, Pending, Skipped, Store


def test_new_database_is_created_at_current_version(tmp_path: Path) -> None:
    store = Store(tmp_path / "sub" / "state.db")
    store.close()
    db = sqlite3.connect(tmp_path / "sub" / "state.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_newer_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StateError, match="newer"):
        Store(path)
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM mailbox").fetchone()[0] == 0  # still there, untouched
    db.close()


def test_garbage_file_is_refused_not_recreated(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StateError, match="cannot be read"):
        Store(path)
    assert path.read_bytes().startswith(b"this is not a database")


def test_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE x (y)")
    db.close()
    with pytest.raises(StateError, match="not a Mailshift state database"):
        Store(path)


def test_chunk_commit_moves_pending_to_map(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    mbx = store.mailbox("m")
    assert store.mailbox("m") == mbx
    store.start_folder(mbx, "INBOX", 7, "INBOX", 70)
    store.add_pending(mbx, "INBOX", 7, [Pending(1, "k1", "INBOX", "f1", frozenset({"\\Seen"}), after="9"),
                                        Pending(2, "k2", "INBOX", "f2", frozenset())])
    assert [(p.key, p.after) for p in store.pending(mbx, "INBOX")[7]] == [("k1", "9"), ("k2", None)]
    store.commit(
        mbx, "INBOX", 7,
        mapped=[Mapped(1, "INBOX", "11", "f1", frozenset({"\\Seen"}))],
        skipped=[Skipped("INBOX", 2, "BadItem", "subj", "date", 9, "refused")],
        resolved_pending=[1, 2],
        highest_uid=2,
    )
    assert store.pending(mbx, "INBOX") == {}
    state = store.folder_state(mbx, "INBOX")
    assert state is not None and (state.highest_uid, state.target_uidvalidity) == (2, 70)
    assert store.mapped(mbx, "INBOX", 7)[1].flags == {"\\Seen"}
    assert store.skipped_counts(mbx) == {"BadItem": 1}
    assert store.skipped_uids(mbx, "INBOX", 7) == {2}
    assert not store.settled(mbx, "INBOX", 7)  # the skipped item is tried again
    assert store.handled_above(mbx, "INBOX", 7, 0) == {1}
    assert store.highest_target_ref(mbx, "INBOX") == 11
    assert store.target_refs(mbx, "INBOX") == {"11"}
    store.close()


def test_a_skipped_item_copied_later_leaves_the_report(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    mbx = store.mailbox("m")
    store.start_folder(mbx, "A", 1, "A", None)
    store.commit(mbx, "A", 1, skipped=[Skipped("A", 3, "BadItem", "s", "d", 9, "refused")])
    before = time.time()
    assert store.skipped_counts(mbx, since=before + 1) == {}  # counted in the run that skipped it
    store.commit(mbx, "A", 1, mapped=[Mapped(3, "A", "30", "fp", frozenset())])
    assert store.skipped(mbx) == [] and store.settled(mbx, "A", 1)
    store.close()


def test_starting_a_folder_again_forgets_its_whole_record(tmp_path: Path) -> None:
    """A new UIDVALIDITY or a replaced target folder voids what was recorded; the messages found
    on the target by content are recorded in the same transaction."""
    store = Store(tmp_path / "s.db")
    mbx = store.mailbox("m")
    store.start_folder(mbx, "A", 1, "A", 10)
    store.commit(mbx, "A", 1, mapped=[Mapped(5, "A", "50", "fp", frozenset())], highest_uid=5,
                 skipped=[Skipped("A", 6, "BadItem", "s", "d", 9, "refused")],
                 altered=[Altered("A", 5, ("internal date replaced",), "x")])
    store.add_pending(mbx, "A", 1, [Pending(7, "k", "A", "f", frozenset())])
    store.start_folder(mbx, "A", 2, "A", 11, [Mapped(1, "A", "50", "fp", frozenset())])
    state = store.folder_state(mbx, "A")
    assert state is not None and (state.uidvalidity, state.highest_uid, state.target_uidvalidity) == (2, 0, 11)
    assert list(store.mapped(mbx, "A", 2)) == [1] and store.mapped(mbx, "A", 1) == {}
    assert store.pending(mbx, "A") == {} and store.skipped(mbx) == [] and store.altered(mbx) == []
    store.close()


def test_many_connections_opening_a_new_database_at_once_create_it_once(tmp_path: Path) -> None:
    """``mailshift sync --mailboxes`` and the service's workers open connections on the same new
    file at the same moment: only one may create the tables, the others must find them, and
    none may fail with "database is locked" (switching a new file to WAL skips the busy wait)."""
    import threading

    for round_ in range(20):
        path = tmp_path / f"state-{round_}.db"
        errors: list[BaseException] = []
        start = threading.Barrier(8)

        def open_one(n: int) -> None:
            start.wait()
            try:
                store = Store(path)
                try:
                    store.mailbox(f"mailbox {n}")
                finally:
                    store.close()
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)

        threads = [threading.Thread(target=open_one, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert errors == []
        store = Store(path)
        try:
            assert {store.mailbox(f"mailbox {n}") for n in range(8)} == set(range(1, 9))
        finally:
            store.close()


def test_rows_of_another_uidvalidity_are_forgotten(tmp_path: Path) -> None:
    """Rows an older version kept under an earlier UIDVALIDITY (or an interrupted run left) would
    keep the folder from ever looking settled: the next sync of the folder forgets them."""
    store = Store(tmp_path / "s.db")
    mbx = store.mailbox("m")
    store.start_folder(mbx, "A", 2, "A", None)
    store.commit(mbx, "A", 1, mapped=[Mapped(5, "A", "50", "fp", frozenset())],
                 skipped=[Skipped("A", 6, "BadItem", "s", "d", 9, "refused")])
    store.add_pending(mbx, "A", 1, [Pending(7, "k", "A", "f", frozenset())])
    store.commit(mbx, "A", 2, mapped=[Mapped(1, "A", "10", "fp", frozenset())])
    assert not store.settled(mbx, "A", 2)
    store.drop_other_uidvalidities(mbx, "A", 2)
    assert store.settled(mbx, "A", 2)
    assert list(store.mapped(mbx, "A", 2)) == [1] and store.skipped(mbx) == [] and store.pending(mbx, "A") == {}
    store.close()
