"""The state database: the record of what was copied, in SQLite.

WAL mode, a busy timeout, short explicit transactions, and a schema version with
forward-only upgrade steps. A database that cannot be read, or that a newer Mailshift wrote,
raises :class:`engine.errors.StateError`; it is never recreated silently.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from engine import defaults
from engine.errors import StateError
from engine.private import PRIVATE_FILE_MODE, private_file, private_folder

__all__ = ["SCHEMA_VERSION", "Altered", "FolderState", "Mapped", "Pending", "Skipped", "Store"]

#: The schema this code writes; databases at a lower version are upgraded step by step.
SCHEMA_VERSION = 5

_UPGRADES: dict[int, str] = {
    1: """
    CREATE TABLE mailbox (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE
    );
    CREATE TABLE folder_state (
        mailbox_id INTEGER NOT NULL REFERENCES mailbox(id) ON DELETE CASCADE,
        source TEXT NOT NULL,
        uidvalidity INTEGER NOT NULL,
        highest_uid INTEGER NOT NULL,
        highest_modseq INTEGER,
        target TEXT NOT NULL,
        PRIMARY KEY (mailbox_id, source)
    );
    CREATE TABLE message_map (
        mailbox_id INTEGER NOT NULL REFERENCES mailbox(id) ON DELETE CASCADE,
        source TEXT NOT NULL,
        uidvalidity INTEGER NOT NULL,
        uid INTEGER NOT NULL,
        target TEXT NOT NULL,
        target_ref TEXT,
        fingerprint TEXT NOT NULL,
        flags TEXT NOT NULL,
        PRIMARY KEY (mailbox_id, source, uidvalidity, uid)
    );
    CREATE INDEX message_map_target ON message_map (mailbox_id, target);
    CREATE TABLE pending (
        mailbox_id INTEGER NOT NULL REFERENCES mailbox(id) ON DELETE CASCADE,
        source TEXT NOT NULL,
        uidvalidity INTEGER NOT NULL,
        uid INTEGER NOT NULL,
        key TEXT NOT NULL,
        target TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        flags TEXT NOT NULL,
        PRIMARY KEY (mailbox_id, source, uidvalidity, uid)
    );
    CREATE TABLE skipped (
        mailbox_id INTEGER NOT NULL REFERENCES mailbox(id) ON DELETE CASCADE,
        source TEXT NOT NULL,
        uidvalidity INTEGER NOT NULL,
        uid INTEGER NOT NULL,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        date TEXT NOT NULL,
        size INTEGER NOT NULL,
        reason TEXT NOT NULL,
        recorded_at REAL NOT NULL,
        PRIMARY KEY (mailbox_id, source, uidvalidity, uid)
    );
    """,
    2: """
    CREATE TABLE endpoint (
        id INTEGER PRIMARY KEY,
        guid TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        endpoint_type TEXT NOT NULL,
        remote_server TEXT NOT NULL,
        port INTEGER NOT NULL,
        security TEXT NOT NULL,
        authentication TEXT NOT NULL,
        accept_untrusted INTEGER NOT NULL,
        max_concurrent_migrations INTEGER NOT NULL,
        max_concurrent_incremental_syncs INTEGER NOT NULL,
        implicit INTEGER NOT NULL DEFAULT 0,
        created REAL NOT NULL
    );
    CREATE TABLE batch (
        id INTEGER PRIMARY KEY,
        guid TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        status TEXT NOT NULL,
        migration_type TEXT NOT NULL,
        endpoint_id INTEGER REFERENCES endpoint(id),
        settings TEXT NOT NULL,
        created REAL NOT NULL,
        started REAL,
        initial_sync_done REAL,
        last_synced REAL,
        finished REAL,
        sync_requested INTEGER NOT NULL DEFAULT 0,
        error TEXT
    );
    CREATE TABLE migration_user (
        id INTEGER PRIMARY KEY,
        guid TEXT NOT NULL UNIQUE,
        batch_id INTEGER NOT NULL REFERENCES batch(id) ON DELETE CASCADE,
        email TEXT NOT NULL COLLATE NOCASE,
        line INTEGER NOT NULL,
        user_name TEXT NOT NULL,
        password BLOB,
        user_root TEXT,
        columns TEXT NOT NULL,
        settings TEXT NOT NULL,
        status TEXT NOT NULL,
        error TEXT,
        phase TEXT,
        lease_owner TEXT,
        lease_until REAL,
        queued REAL,
        started REAL,
        last_successful_sync REAL,
        next_sync REAL,
        synced_items INTEGER NOT NULL DEFAULT 0,
        skipped_items INTEGER NOT NULL DEFAULT 0,
        bytes_transferred INTEGER NOT NULL DEFAULT 0,
        total_items INTEGER NOT NULL DEFAULT 0,
        total_bytes INTEGER NOT NULL DEFAULT 0,
        report TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX migration_user_email ON migration_user (email);
    CREATE INDEX migration_user_batch ON migration_user (batch_id, status);
    CREATE TABLE config (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # When the last bytes of a pending message's APPEND went out: a server may still commit such
    # a transaction after the client died, so the next run waits for it before copying again.
    3: """
    ALTER TABLE pending ADD COLUMN sent REAL;
    """,
    4: """
    ALTER TABLE mailbox ADD COLUMN plan TEXT;
    """,
    # The target folder's UIDVALIDITY (a replaced target folder voids the record), and what
    # targets changed in the messages they stored.
    5: """
    ALTER TABLE folder_state ADD COLUMN target_uidvalidity INTEGER;
    ALTER TABLE pending ADD COLUMN after_ref TEXT;
    CREATE TABLE alteration (
        mailbox_id INTEGER NOT NULL REFERENCES mailbox(id) ON DELETE CASCADE,
        source TEXT NOT NULL,
        uidvalidity INTEGER NOT NULL,
        uid INTEGER NOT NULL,
        target TEXT NOT NULL,
        kinds TEXT NOT NULL,
        detail TEXT NOT NULL,
        PRIMARY KEY (mailbox_id, source, uidvalidity, uid)
    );
    """,
}


@dataclass(frozen=True)
class FolderState:
    """Where the copy of one source folder stands."""

    source: str
    uidvalidity: int
    highest_uid: int
    highest_modseq: int | None
    target: str
    #: The target folder's UIDVALIDITY when the record was made (None: unknown, or a target
    #: without one).
    target_uidvalidity: int | None = None


@dataclass(frozen=True)
class Mapped:
    """One copied message: its source UID and where it went."""

    uid: int
    target: str
    target_ref: str | None
    fingerprint: str
    flags: frozenset[str]


@dataclass(frozen=True)
class Pending:
    """A message about to be appended: the uncertain window a crash may leave behind."""

    uid: int
    key: str
    target: str
    fingerprint: str
    flags: frozenset[str]
    #: When the whole APPEND command had been sent (epoch seconds), or None if it never was.
    sent: float | None = None
    #: The highest target reference recorded when its folder's copy began (its copy, if
    #: stored, lies above), or None when unknown (look through the whole target folder).
    after: str | None = None


@dataclass(frozen=True)
class Skipped:
    """A message left out, for the skipped-item report."""

    folder: str
    uid: int
    kind: str
    subject: str
    date: str
    size: int
    reason: str


@dataclass(frozen=True)
class Altered:
    """A copied message the target stored differently from the source."""

    folder: str
    uid: int
    #: Short names of the changes, e.g. ``("line end added at the end", "internal date replaced")``.
    kinds: tuple[str, ...]
    #: The values compared, for the report (sizes, dates).
    detail: str


def _flags(text: str) -> frozenset[str]:
    return frozenset(text.split()) if text else frozenset()


def _flag_text(flags: Iterable[str]) -> str:
    return " ".join(sorted(flags))


class Store:
    """A connection to the state database. Use from one thread."""

    def __init__(self, path: str | Path) -> None:
        """Open (creating when absent) and upgrade the database at ``path``.

        Raises:
            StateError: The file is not a Mailshift database, is corrupt, or is newer.
        """
        self.path = Path(path)
        private_folder(self.path.parent)
        try:
            private_file(self.path)  # SQLite gives its -wal and -shm files the database's mode
            self._db = sqlite3.connect(
                self.path, timeout=defaults.SQLITE_BUSY_TIMEOUT_SECONDS, isolation_level=None
            )
            self._prepare()
            for companion in (Path(f"{self.path}-wal"), Path(f"{self.path}-shm")):
                if companion.exists():
                    os.chmod(companion, PRIVATE_FILE_MODE)  # made by an older version
        except sqlite3.DatabaseError as exc:
            raise StateError(f"state database {self.path} cannot be read: {exc}") from exc

    def _prepare(self) -> None:
        """Settings and schema. Connections opening a new file at the same moment can get
        "database is locked" at once, without SQLite's busy wait (switching a new file to WAL
        takes an exclusive lock): such a connection tries again, within the busy timeout."""
        deadline = time.monotonic() + defaults.SQLITE_BUSY_TIMEOUT_SECONDS
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute("PRAGMA foreign_keys=ON")
                self._upgrade()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.005)

    def _upgrade(self) -> None:
        if self._version() == SCHEMA_VERSION:
            return
        # Under the write lock, and read again: several processes or threads may open a new
        # database at the same moment, and only the first may create the tables.
        with self._tx():
            version = self._version()
            if version == 0 and self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                raise StateError(f"{self.path} is an SQLite database but not a Mailshift state database")
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _UPGRADES[step].split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version={step}")

    def _version(self) -> int:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StateError(
                f"state database {self.path} has schema version {version}, newer than this "
                f"Mailshift understands ({SCHEMA_VERSION}); upgrade Mailshift"
            )
        return version

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    # -- mailboxes and folders ------------------------------------------------------------

    def mailbox(self, key: str) -> int:
        """The id of the mailbox named ``key``, created on first use."""
        row = self._db.execute("SELECT id FROM mailbox WHERE key=?", (key,)).fetchone()
        if row:
            return int(row[0])
        with self._tx() as db:
            cur = db.execute("INSERT INTO mailbox(key) VALUES (?)", (key,))
            return int(cur.lastrowid or 0)

    def saved_plan(self, mailbox: int) -> str | None:
        """The folder plan of the mailbox's last run, as :meth:`save_plan` stored it."""
        row = self._db.execute("SELECT plan FROM mailbox WHERE id=?", (mailbox,)).fetchone()
        return str(row[0]) if row and row[0] is not None else None

    def save_plan(self, mailbox: int, plan: str) -> None:
        """Keep the mailbox's folder plan (text) for the next run."""
        with self._tx() as db:
            db.execute("UPDATE mailbox SET plan=? WHERE id=?", (plan, mailbox))

    def folder_state(self, mailbox: int, source: str) -> FolderState | None:
        """The stored state of one source folder, or None before its first sync."""
        row = self._db.execute(
            "SELECT source, uidvalidity, highest_uid, highest_modseq, target, target_uidvalidity FROM folder_state "
            "WHERE mailbox_id=? AND source=?",
            (mailbox, source),
        ).fetchone()
        return FolderState(*row) if row else None

    def start_folder(
        self,
        mailbox: int,
        source: str,
        uidvalidity: int,
        target: str,
        target_uidvalidity: int | None,
        mapped: Sequence[Mapped] = (),
    ) -> None:
        """Begin the record of a folder anew, in one transaction: everything recorded about it
        before (another UIDVALIDITY, a replaced target folder) is forgotten, and ``mapped`` (the
        messages found on the target by content) recorded as copied."""
        with self._tx() as db:
            for table in ("message_map", "pending", "skipped", "alteration"):
                db.execute(f"DELETE FROM {table} WHERE mailbox_id=? AND source=?", (mailbox, source))
            db.execute(
                "INSERT INTO folder_state(mailbox_id, source, uidvalidity, highest_uid, "
                "highest_modseq, target, target_uidvalidity) VALUES (?,?,?,0,NULL,?,?) "
                "ON CONFLICT(mailbox_id, source) DO UPDATE SET uidvalidity=excluded.uidvalidity, "
                "highest_uid=0, highest_modseq=NULL, target=excluded.target, "
                "target_uidvalidity=excluded.target_uidvalidity",
                (mailbox, source, uidvalidity, target, target_uidvalidity),
            )
            self._insert_mapped(db, mailbox, source, uidvalidity, mapped)

    def set_target_uidvalidity(self, mailbox: int, source: str, target_uidvalidity: int | None) -> None:
        """Record the target folder's UIDVALIDITY (a record made before it was kept)."""
        with self._tx() as db:
            db.execute(
                "UPDATE folder_state SET target_uidvalidity=? WHERE mailbox_id=? AND source=?",
                (target_uidvalidity, mailbox, source),
            )

    @staticmethod
    def _insert_mapped(db: sqlite3.Connection, mailbox: int, source: str, uidvalidity: int, mapped: Sequence[Mapped]) -> None:
        db.executemany(
            "INSERT OR REPLACE INTO message_map(mailbox_id, source, uidvalidity, uid, target, "
            "target_ref, fingerprint, flags) VALUES (?,?,?,?,?,?,?,?)",
            [(mailbox, source, uidvalidity, m.uid, m.target, m.target_ref, m.fingerprint, _flag_text(m.flags)) for m in mapped],
        )
        db.executemany(
            "DELETE FROM skipped WHERE mailbox_id=? AND source=? AND uidvalidity=? AND uid=?",
            [(mailbox, source, uidvalidity, m.uid) for m in mapped],
        )

    def set_modseq(self, mailbox: int, source: str, modseq: int | None) -> None:
        """Record the HIGHESTMODSEQ up to which flag changes have been carried."""
        with self._tx() as db:
            db.execute(
                "UPDATE folder_state SET highest_modseq=? WHERE mailbox_id=? AND source=?",
                (modseq, mailbox, source),
            )

    # -- the message map ------------------------------------------------------------------

    def mapped(self, mailbox: int, source: str, uidvalidity: int) -> dict[int, Mapped]:
        """Copied messages of a folder under one UIDVALIDITY, by source UID."""
        rows = self._db.execute(
            "SELECT uid, target, target_ref, fingerprint, flags FROM message_map "
            "WHERE mailbox_id=? AND source=? AND uidvalidity=?",
            (mailbox, source, uidvalidity),
        )
        return {r[0]: Mapped(r[0], r[1], r[2], r[3], _flags(r[4])) for r in rows}

    def highest_target_ref(self, mailbox: int, target: str) -> int:
        """The largest numeric target reference recorded for a target folder (0 when none)."""
        row = self._db.execute(
            "SELECT max(CAST(target_ref AS INTEGER)) FROM message_map WHERE mailbox_id=? AND target=?",
            (mailbox, target),
        ).fetchone()
        return int(row[0] or 0)

    def target_refs(self, mailbox: int, target: str) -> set[str]:
        """References of the target folder's messages recorded as copies of source messages."""
        rows = self._db.execute(
            "SELECT target_ref FROM message_map WHERE mailbox_id=? AND target=? AND target_ref IS NOT NULL",
            (mailbox, target),
        )
        return {str(r[0]) for r in rows}

    def add_pending(self, mailbox: int, source: str, uidvalidity: int, items: Sequence[Pending]) -> None:
        """Record messages about to be appended, before the APPEND is sent."""
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO pending(mailbox_id, source, uidvalidity, uid, key, target, "
                "fingerprint, flags, after_ref) VALUES (?,?,?,?,?,?,?,?,?)",
                [
                    (mailbox, source, uidvalidity, p.uid, p.key, p.target, p.fingerprint, _flag_text(p.flags), p.after)
                    for p in items
                ],
            )

    def mark_sent(self, mailbox: int, source: str, uidvalidity: int, uids: Sequence[int], when: float | None) -> None:
        """Note that the APPEND carrying these pending messages is about to be sent in full
        (``when``), or that it was not after all (None)."""
        with self._tx() as db:
            db.executemany(
                "UPDATE pending SET sent=? WHERE mailbox_id=? AND source=? AND uidvalidity=? AND uid=?",
                [(when, mailbox, source, uidvalidity, uid) for uid in uids],
            )

    def pending(self, mailbox: int, source: str) -> dict[int, list[Pending]]:
        """Messages left in the uncertain window by an interrupted run, by UIDVALIDITY."""
        out: dict[int, list[Pending]] = {}
        rows = self._db.execute(
            "SELECT uidvalidity, uid, key, target, fingerprint, flags, sent, after_ref FROM pending "
            "WHERE mailbox_id=? AND source=? ORDER BY uid",
            (mailbox, source),
        )
        for r in rows:
            out.setdefault(r[0], []).append(Pending(r[1], r[2], r[3], r[4], _flags(r[5]), r[6], r[7]))
        return out

    def commit(
        self,
        mailbox: int,
        source: str,
        uidvalidity: int,
        *,
        mapped: Sequence[Mapped] = (),
        skipped: Sequence[Skipped] = (),
        resolved_pending: Sequence[int] = (),
        highest_uid: int | None = None,
        altered: Sequence[Altered] = (),
    ) -> None:
        """Record the outcome of one chunk in one transaction.

        Args:
            mailbox: Mailbox id.
            source: Source folder.
            uidvalidity: The folder's current UIDVALIDITY.
            mapped: Messages now known to be on the target (no longer skipped items).
            skipped: Messages left out (in this run).
            resolved_pending: UIDs (under ``uidvalidity``) to take out of the uncertain window.
            highest_uid: New high-water mark of handled UIDs, if it moves.
            altered: Copied messages the target stored differently.
        """
        with self._tx() as db:
            self._insert_mapped(db, mailbox, source, uidvalidity, mapped)
            now = time.time()
            db.executemany(
                "INSERT OR REPLACE INTO skipped(mailbox_id, source, uidvalidity, uid, kind, subject, "
                "date, size, reason, recorded_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [(mailbox, source, uidvalidity, s.uid, s.kind, s.subject, s.date, s.size, s.reason, now) for s in skipped],
            )
            db.executemany(
                "DELETE FROM pending WHERE mailbox_id=? AND source=? AND uidvalidity=? AND uid=?",
                [(mailbox, source, uidvalidity, uid) for uid in resolved_pending],
            )
            db.executemany(
                "INSERT OR REPLACE INTO alteration(mailbox_id, source, uidvalidity, uid, target, kinds, detail) "
                "VALUES (?,?,?,?,?,?,?)",
                [(mailbox, source, uidvalidity, a.uid, a.folder, "; ".join(a.kinds), a.detail) for a in altered],
            )
            if highest_uid is not None:
                db.execute(
                    "UPDATE folder_state SET highest_uid=max(highest_uid, ?) WHERE mailbox_id=? AND source=?",
                    (highest_uid, mailbox, source),
                )

    def drop_other_uidvalidities(self, mailbox: int, source: str, uidvalidity: int) -> None:
        """Forget what a folder's record holds under another UIDVALIDITY (left by an interrupted
        run or by versions that kept such rows to match against)."""
        with self._tx() as db:
            for table in ("pending", "message_map", "skipped", "alteration"):
                db.execute(
                    f"DELETE FROM {table} WHERE mailbox_id=? AND source=? AND uidvalidity<>?", (mailbox, source, uidvalidity)
                )

    def forget_skipped(self, mailbox: int, source: str, uidvalidity: int, uids: Sequence[int]) -> None:
        """Take skipped items out of the report (they no longer exist on the source)."""
        with self._tx() as db:
            db.executemany(
                "DELETE FROM skipped WHERE mailbox_id=? AND source=? AND uidvalidity=? AND uid=?",
                [(mailbox, source, uidvalidity, uid) for uid in uids],
            )

    def update_flags(self, mailbox: int, source: str, uidvalidity: int, changes: Sequence[tuple[int, frozenset[str]]]) -> None:
        """Record flags now carried to the target."""
        with self._tx() as db:
            db.executemany(
                "UPDATE message_map SET flags=? WHERE mailbox_id=? AND source=? AND uidvalidity=? AND uid=?",
                [(_flag_text(f), mailbox, source, uidvalidity, uid) for uid, f in changes],
            )

    def forget(self, mailbox: int, source: str, uidvalidity: int, uids: Sequence[int]) -> None:
        """Remove messages deleted on the source (and on the target) from the map."""
        with self._tx() as db:
            db.executemany(
                "DELETE FROM message_map WHERE mailbox_id=? AND source=? AND uidvalidity=? AND uid=?",
                [(mailbox, source, uidvalidity, uid) for uid in uids],
            )

    def copied_count(self, key: str) -> int:
        """Messages recorded as copied for the mailbox named ``key`` (0 before its first sync)."""
        row = self._db.execute(
            "SELECT count(*) FROM message_map JOIN mailbox ON mailbox.id = message_map.mailbox_id "
            "WHERE mailbox.key=?",
            (key,),
        ).fetchone()
        return int(row[0])

    def drop_mailbox(self, key: str) -> None:
        """Forget everything recorded about the mailbox named ``key``."""
        with self._tx() as db:
            db.execute("DELETE FROM mailbox WHERE key=?", (key,))

    # -- reports --------------------------------------------------------------------------

    def skipped(self, mailbox: int) -> list[Skipped]:
        """Every skipped item of a mailbox, oldest first."""
        rows = self._db.execute(
            "SELECT source, uid, kind, subject, date, size, reason FROM skipped WHERE mailbox_id=? "
            "ORDER BY recorded_at, source, uid",
            (mailbox,),
        )
        return [Skipped(*r) for r in rows]

    def skipped_counts(self, mailbox: int, since: float = 0.0) -> dict[str, int]:
        """Skipped items of a mailbox by kind, those recorded since ``since`` (epoch seconds)."""
        rows = self._db.execute(
            "SELECT kind, count(*) FROM skipped WHERE mailbox_id=? AND recorded_at>=? GROUP BY kind", (mailbox, since)
        )
        return {r[0]: int(r[1]) for r in rows}

    def skipped_uids(self, mailbox: int, source: str, uidvalidity: int) -> set[int]:
        """UIDs of a folder's skipped items, which every sync tries again."""
        rows = self._db.execute(
            "SELECT uid FROM skipped WHERE mailbox_id=? AND source=? AND uidvalidity=?", (mailbox, source, uidvalidity)
        )
        return {int(r[0]) for r in rows}

    def altered(self, mailbox: int) -> list[Altered]:
        """Every copied message of a mailbox that its target stored differently."""
        rows = self._db.execute(
            "SELECT target, uid, kinds, detail FROM alteration WHERE mailbox_id=? ORDER BY target, uid", (mailbox,)
        )
        return [Altered(r[0], int(r[1]), tuple(r[2].split("; ")), r[3]) for r in rows]

    def settled(self, mailbox: int, source: str, uidvalidity: int) -> bool:
        """Whether a folder has no pending messages, no skipped items to try again and no rows
        of another UIDVALIDITY, i.e. no earlier run left work behind in it."""
        row = self._db.execute(
            "SELECT EXISTS (SELECT 1 FROM pending WHERE mailbox_id=? AND source=?) "
            "OR EXISTS (SELECT 1 FROM skipped WHERE mailbox_id=? AND source=?) "
            "OR EXISTS (SELECT 1 FROM message_map WHERE mailbox_id=? AND source=? AND uidvalidity<>?)",
            (mailbox, source, mailbox, source, mailbox, source, uidvalidity),
        ).fetchone()
        return not row[0]

    def handled_above(self, mailbox: int, source: str, uidvalidity: int, uid: int) -> set[int]:
        """UIDs above ``uid`` already copied (an interrupted run leaves such gaps)."""
        rows = self._db.execute(
            "SELECT uid FROM message_map WHERE mailbox_id=? AND source=? AND uidvalidity=? AND uid>?",
            (mailbox, source, uidvalidity, uid),
        )
        return {int(r[0]) for r in rows}
