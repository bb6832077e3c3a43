"""The migration catalog: endpoints, batches, migration users and the service's config.

It lives in the same SQLite database as the copy state (:class:`engine.store.Store`), so one
schema version covers both. Rows come out as frozen dataclasses; every status change goes
through :mod:`engine.status`. Passwords are stored only sealed by the :class:`engine.vault.Vault`.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.status import BatchAction, BatchStatus, UserAction, UserStatus, move_batch, move_user
from engine.store import Store

__all__ = ["BatchRow", "Catalog", "EndpointRow", "UserRow"]

#: The lifecycle events of batches and users (by EmailAddress), one line per status change.
log = logging.getLogger("engine.lifecycle")


@dataclass(frozen=True)
class EndpointRow:
    """An IMAP source endpoint."""

    id: int
    guid: str
    name: str
    endpoint_type: str
    remote_server: str
    port: int
    security: str
    authentication: str
    accept_untrusted: bool
    max_concurrent_migrations: int
    max_concurrent_incremental_syncs: int
    implicit: bool
    created: float


@dataclass(frozen=True)
class BatchRow:
    """A migration batch; ``settings`` holds the batch-wide parameters as given."""

    id: int
    guid: str
    name: str
    status: BatchStatus
    migration_type: str
    endpoint_id: int | None
    settings: Mapping[str, Any]
    created: float
    started: float | None
    initial_sync_done: float | None
    last_synced: float | None
    finished: float | None
    sync_requested: bool
    error: str | None


@dataclass(frozen=True)
class UserRow:
    """One migration user (one CSV row); the sealed password is never part of its repr."""

    id: int
    guid: str
    batch_id: int
    email: str
    line: int
    user_name: str
    password: bytes | None = field(repr=False)
    user_root: str | None
    columns: Mapping[str, str]
    settings: Mapping[str, Any]
    status: UserStatus
    error: str | None
    phase: str | None
    lease_owner: str | None
    lease_until: float | None
    queued: float | None
    started: float | None
    last_successful_sync: float | None
    next_sync: float | None
    synced_items: int
    skipped_items: int
    bytes_transferred: int
    total_items: int
    total_bytes: int
    report: Sequence[Mapping[str, Any]]

    @property
    def mailbox_key(self) -> str:
        """The key of this user's copy state in the store."""
        return f"user:{self.guid}"


_ENDPOINT_COLUMNS = (
    "id, guid, name, endpoint_type, remote_server, port, security, authentication, accept_untrusted, "
    "max_concurrent_migrations, max_concurrent_incremental_syncs, implicit, created"
)
_BATCH_COLUMNS = (
    "id, guid, name, status, migration_type, endpoint_id, settings, created, started, "
    "initial_sync_done, last_synced, finished, sync_requested, error"
)
_USER_COLUMNS = (
    "id, guid, batch_id, email, line, user_name, password, user_root, columns, settings, status, error, "
    "phase, lease_owner, lease_until, queued, started, last_successful_sync, next_sync, synced_items, "
    "skipped_items, bytes_transferred, total_items, total_bytes, report"
)


#: Columns holding JSON documents.
_JSON_COLUMNS = frozenset({"settings", "columns", "report"})


def _column(name: str, value: Any) -> Any:
    """A value as stored in column ``name`` (JSON documents are encoded)."""
    return json.dumps(value) if name in _JSON_COLUMNS else value


def _endpoint(row: Sequence[Any]) -> EndpointRow:
    values = list(row)
    values[8] = bool(values[8])
    values[11] = bool(values[11])
    return EndpointRow(*values)


def _batch(row: Sequence[Any]) -> BatchRow:
    values = list(row)
    values[3] = BatchStatus(values[3])
    values[6] = json.loads(values[6])
    values[12] = bool(values[12])
    return BatchRow(*values)


def _user(row: Sequence[Any]) -> UserRow:
    values = list(row)
    values[8] = json.loads(values[8])
    values[9] = json.loads(values[9])
    values[10] = UserStatus(values[10])
    values[24] = json.loads(values[24])
    return UserRow(*values)


def _log_move(kind: str, who: str, batch: str | None, action: str, old: str, new: str, error: str | None) -> None:
    """The lifecycle line of one status change: a user by EmailAddress, with the reason when it failed."""
    failed = "Failed" in new
    where = f" (batch {batch})" if kind == "user" and batch else ""
    reason = f": {error}" if failed and error else ""
    extra = {"batch": batch, "action": action, "previous_status": old, "status": new,
             **({"email": who} if kind == "user" else {}), **({"reason": error} if failed and error else {})}
    log.log(logging.WARNING if failed else logging.INFO, "%s %s%s: %s -> %s%s", "migration user" if kind == "user"
            else "batch", who, where, old, new, reason, extra=extra)


class Catalog(Store):
    """The state database with the catalog's queries. Use from one thread."""

    # -- config ---------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """Every stored config value (defaults are applied by the caller)."""
        return {k: json.loads(v) for k, v in self._db.execute("SELECT key, value FROM config")}

    def set_config(self, values: Mapping[str, Any]) -> None:
        """Store config values."""
        with self._tx() as db:
            db.executemany(
                "INSERT INTO config(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                [(k, json.dumps(v)) for k, v in values.items()],
            )

    # -- endpoints ------------------------------------------------------------------------

    def add_endpoint(self, **values: Any) -> EndpointRow:
        """Insert an endpoint; ``values`` are its columns but id, guid and created."""
        values = {**values, "guid": str(uuid.uuid4()), "created": time.time()}
        names = ", ".join(values)
        with self._tx() as db:
            cur = db.execute(
                f"INSERT INTO endpoint({names}) VALUES ({', '.join('?' * len(values))})", list(values.values())
            )
        found = self.endpoint_by_id(int(cur.lastrowid or 0))
        assert found is not None
        return found

    def endpoint_by_id(self, endpoint_id: int) -> EndpointRow | None:
        """The endpoint with this id."""
        row = self._db.execute(f"SELECT {_ENDPOINT_COLUMNS} FROM endpoint WHERE id=?", (endpoint_id,)).fetchone()
        return _endpoint(row) if row else None

    def find_endpoint(self, identity: str) -> EndpointRow | None:
        """The endpoint named ``identity`` (case-insensitively) or with that GUID."""
        row = self._db.execute(
            f"SELECT {_ENDPOINT_COLUMNS} FROM endpoint WHERE name=? OR guid=?", (identity, identity.lower())
        ).fetchone()
        return _endpoint(row) if row else None

    def endpoints(self, *, include_implicit: bool = False) -> list[EndpointRow]:
        """Endpoints by name (those made implicitly for 2010-style batches only when asked)."""
        rows = self._db.execute(
            f"SELECT {_ENDPOINT_COLUMNS} FROM endpoint {'' if include_implicit else 'WHERE implicit=0'} ORDER BY name"
        )
        return [_endpoint(r) for r in rows]

    def update_endpoint(self, endpoint_id: int, values: Mapping[str, Any]) -> None:
        """Change endpoint columns."""
        if values:
            with self._tx() as db:
                db.execute(
                    f"UPDATE endpoint SET {', '.join(f'{k}=?' for k in values)} WHERE id=?",
                    [*values.values(), endpoint_id],
                )

    def remove_endpoint(self, endpoint_id: int) -> None:
        """Delete an endpoint."""
        with self._tx() as db:
            db.execute("DELETE FROM endpoint WHERE id=?", (endpoint_id,))

    def batches_using(self, endpoint_id: int) -> list[str]:
        """Names of the batches that use an endpoint."""
        return [r[0] for r in self._db.execute("SELECT name FROM batch WHERE endpoint_id=? ORDER BY name", (endpoint_id,))]

    # -- batches --------------------------------------------------------------------------

    def add_batch(
        self,
        *,
        name: str,
        migration_type: str,
        endpoint_id: int | None,
        settings: Mapping[str, Any],
        users: Iterable[Mapping[str, Any]],
    ) -> BatchRow:
        """Insert a batch in status Created with its users (status Queued not yet: Created users wait)."""
        now = time.time()
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO batch(guid, name, status, migration_type, endpoint_id, settings, created) "
                "VALUES (?,?,?,?,?,?,?)",
                (str(uuid.uuid4()), name, BatchStatus.CREATED.value, migration_type, endpoint_id, json.dumps(settings), now),
            )
            batch_id = int(cur.lastrowid or 0)
            users = list(users)
            db.executemany(
                "INSERT INTO migration_user(guid, batch_id, email, line, user_name, password, user_root, columns, "
                "settings, status) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        str(uuid.uuid4()), batch_id, u["email"], u["line"], u["user_name"], u["password"],
                        u.get("user_root"), json.dumps(u["columns"]), json.dumps(u["settings"]),
                        UserStatus.STOPPED.value,
                    )
                    for u in users
                ],
            )
        found = self.batch_by_id(batch_id)
        assert found is not None
        log.info("batch %s: created with %d users (%s)", name, len(users), ", ".join(u["email"] for u in users),
                 extra={"batch": name, "status": found.status.value, "users": len(users)})
        return found

    def batch_by_id(self, batch_id: int) -> BatchRow | None:
        """The batch with this id."""
        row = self._db.execute(f"SELECT {_BATCH_COLUMNS} FROM batch WHERE id=?", (batch_id,)).fetchone()
        return _batch(row) if row else None

    def find_batch(self, identity: str) -> BatchRow | None:
        """The batch named ``identity`` (case-insensitively) or with that GUID."""
        row = self._db.execute(
            f"SELECT {_BATCH_COLUMNS} FROM batch WHERE name=? OR guid=?", (identity, identity.lower())
        ).fetchone()
        return _batch(row) if row else None

    def batches(self, statuses: Iterable[BatchStatus] | None = None) -> list[BatchRow]:
        """Batches in creation order, optionally only those in ``statuses``."""
        rows = [_batch(r) for r in self._db.execute(f"SELECT {_BATCH_COLUMNS} FROM batch ORDER BY created, id")]
        wanted = set(statuses) if statuses is not None else None
        return [b for b in rows if wanted is None or b.status in wanted]

    def move_batch(self, batch: BatchRow, action: BatchAction, new: BatchStatus, **values: Any) -> BatchRow:
        """Change a batch's status through the transition table, with other columns at once.

        The move is checked against the status stored now, not the one the caller read.
        """
        with self._tx() as db:
            current = BatchStatus(db.execute("SELECT status FROM batch WHERE id=?", (batch.id,)).fetchone()[0])
            move_batch(batch.name, action, current, new)
            values = {"status": new.value, **values}
            db.execute(
                f"UPDATE batch SET {', '.join(f'{k}=?' for k in values)} WHERE id=?",
                [*(_column(k, v) for k, v in values.items()), batch.id],
            )
        found = self.batch_by_id(batch.id)
        assert found is not None
        _log_move("batch", batch.name, batch.name, action.value, current.value, new.value, found.error)
        return found

    def update_batch(self, batch_id: int, values: Mapping[str, Any]) -> None:
        """Change batch columns other than the status."""
        assert "status" not in values, "statuses change only through move_batch"
        if values:
            with self._tx() as db:
                db.execute(
                    f"UPDATE batch SET {', '.join(f'{k}=?' for k in values)} WHERE id=?",
                    [*(_column(k, v) for k, v in values.items()), batch_id],
                )

    def remove_batch(self, batch_id: int) -> list[str]:
        """Delete a batch and its users; returns the users' mailbox keys (their copy state)."""
        keys = [f"user:{r[0]}" for r in self._db.execute("SELECT guid FROM migration_user WHERE batch_id=?", (batch_id,))]
        with self._tx() as db:
            db.execute("DELETE FROM batch WHERE id=?", (batch_id,))
        return keys

    # -- users ----------------------------------------------------------------------------

    def users(
        self,
        *,
        batch_id: int | None = None,
        statuses: Iterable[UserStatus] | None = None,
        email: str | None = None,
    ) -> list[UserRow]:
        """Migration users in batch and CSV order, filtered as asked."""
        where: list[str] = []
        args: list[Any] = []
        if batch_id is not None:
            where.append("batch_id=?")
            args.append(batch_id)
        if email is not None:
            where.append("(email=? OR guid=?)")
            args += [email, email.lower()]
        if statuses is not None:
            wanted = [s.value for s in statuses]
            where.append(f"status IN ({', '.join('?' * len(wanted))})")
            args += wanted
        sql = f"SELECT {_USER_COLUMNS} FROM migration_user {'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY batch_id, line"
        return [_user(r) for r in self._db.execute(sql, args)]

    def _batch_name(self, batch_id: int) -> str | None:
        row = self._db.execute("SELECT name FROM batch WHERE id=?", (batch_id,)).fetchone()
        return str(row[0]) if row else None

    def user_by_id(self, user_id: int) -> UserRow | None:
        """The migration user with this id."""
        row = self._db.execute(f"SELECT {_USER_COLUMNS} FROM migration_user WHERE id=?", (user_id,)).fetchone()
        return _user(row) if row else None

    def move_user(self, user: UserRow, action: UserAction, new: UserStatus, **values: Any) -> UserRow:
        """Change a user's status through the transition table, with other columns at once."""
        with self._tx() as db:
            current = UserStatus(db.execute("SELECT status FROM migration_user WHERE id=?", (user.id,)).fetchone()[0])
            move_user(user.email, action, current, new)
            values = {"status": new.value, **values}
            db.execute(
                f"UPDATE migration_user SET {', '.join(f'{k}=?' for k in values)} WHERE id=?",
                [*(_column(k, v) for k, v in values.items()), user.id],
            )
        found = self.user_by_id(user.id)
        assert found is not None
        _log_move("user", user.email, self._batch_name(user.batch_id), action.value, current.value, new.value,
                  found.error)
        return found

    def claim(self, user: UserRow, owner: str, until: float, phase: str) -> UserRow | None:
        """Take a queued user for this process: Queued -> the phase's running status, with a lease.

        Returns None when another worker claimed it first.
        """
        new = {"initial": UserStatus.SYNCING, "incremental": UserStatus.INCREMENTAL_SYNCING, "final": UserStatus.COMPLETING}[phase]
        move_user(user.email, UserAction.BEGIN, UserStatus.QUEUED, new)  # the UPDATE below requires Queued
        with self._tx() as db:
            cur = db.execute(
                "UPDATE migration_user SET status=?, phase=?, lease_owner=?, lease_until=?, started=? "
                "WHERE id=? AND status=?",
                (new.value, phase, owner, until, time.time(), user.id, UserStatus.QUEUED.value),
            )
            if cur.rowcount != 1:
                return None
        _log_move("user", user.email, self._batch_name(user.batch_id), UserAction.BEGIN.value,
                  UserStatus.QUEUED.value, new.value, None)
        return self.user_by_id(user.id)

    def renew(self, user_ids: Sequence[int], owner: str, until: float) -> None:
        """Extend the leases this process holds."""
        with self._tx() as db:
            db.executemany(
                "UPDATE migration_user SET lease_until=? WHERE id=? AND lease_owner=?",
                [(until, uid, owner) for uid in user_ids],
            )

    def expired_leases(self, now: float, owner: str) -> list[UserRow]:
        """Running users whose lease ran out or belongs to a process that is gone."""
        running = [UserStatus.SYNCING.value, UserStatus.INCREMENTAL_SYNCING.value, UserStatus.COMPLETING.value, UserStatus.STOPPING.value]
        rows = self._db.execute(
            f"SELECT {_USER_COLUMNS} FROM migration_user WHERE status IN ({', '.join('?' * len(running))}) "
            "AND (lease_owner IS NULL OR lease_owner<>? OR lease_until<?)",
            [*running, owner, now],
        )
        return [_user(r) for r in rows]

    def update_user(self, user_id: int, values: Mapping[str, Any]) -> None:
        """Change user columns other than the status."""
        assert "status" not in values, "statuses change only through move_user"
        if values:
            with self._tx() as db:
                db.execute(
                    f"UPDATE migration_user SET {', '.join(f'{k}=?' for k in values)} WHERE id=?",
                    [*(_column(k, v) for k, v in values.items()), user_id],
                )

    def remove_user(self, user_id: int) -> None:
        """Delete one migration user."""
        with self._tx() as db:
            db.execute("DELETE FROM migration_user WHERE id=?", (user_id,))

    def status_counts(self, batch_id: int | None = None) -> dict[UserStatus, int]:
        """How many users are in each status (in one batch, or overall)."""
        sql = "SELECT status, count(*) FROM migration_user"
        rows = self._db.execute(sql + (" WHERE batch_id=? GROUP BY status" if batch_id is not None else " GROUP BY status"),
                                (batch_id,) if batch_id is not None else ())
        return {UserStatus(r[0]): int(r[1]) for r in rows}
