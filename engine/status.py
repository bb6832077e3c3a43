"""Batch and user statuses, named as Exchange names them, and the one table of allowed moves.

Every status change goes through :func:`move_batch` or :func:`move_user`. A refused move
raises :class:`IllegalTransition`, which names the action, the current status, and the
statuses from which the action would have been allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TypeVar

from engine.errors import MigrationError, Scope

__all__ = [
    "BatchAction",
    "BatchStatus",
    "IllegalTransition",
    "UserAction",
    "UserStatus",
    "move_batch",
    "move_user",
    "parse_status",
]


class BatchStatus(StrEnum):
    """Exchange's ``MigrationBatchStatus`` values."""

    CREATED = "Created"
    SYNCING = "Syncing"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    COMPLETED = "Completed"
    FAILED = "Failed"
    REMOVING = "Removing"
    SYNCED = "Synced"
    INCREMENTAL_SYNCING = "IncrementalSyncing"
    COMPLETING = "Completing"
    COMPLETED_WITH_ERRORS = "CompletedWithErrors"
    SYNCED_WITH_ERRORS = "SyncedWithErrors"
    CORRUPTED = "Corrupted"
    WAITING = "Waiting"
    STARTING = "Starting"


class UserStatus(StrEnum):
    """Exchange's ``MigrationUserStatus`` values (IMAP uses the sync and completion ones)."""

    QUEUED = "Queued"
    SYNCING = "Syncing"
    FAILED = "Failed"
    SYNCED = "Synced"
    INCREMENTAL_FAILED = "IncrementalFailed"
    COMPLETING = "Completing"
    COMPLETED = "Completed"
    COMPLETION_FAILED = "CompletionFailed"
    CORRUPTED = "Corrupted"
    PROVISIONING = "Provisioning"
    PROVISION_UPDATING = "ProvisionUpdating"
    COMPLETION_SYNCED = "CompletionSynced"
    VALIDATING = "Validating"
    INCREMENTAL_SYNCING = "IncrementalSyncing"
    INCREMENTAL_SYNCED = "IncrementalSynced"
    COMPLETED_WITH_WARNINGS = "CompletedWithWarnings"
    STOPPED = "Stopped"
    INCREMENTAL_STOPPED = "IncrementalStopped"
    STARTING = "Starting"
    STOPPING = "Stopping"
    REMOVING = "Removing"


class BatchAction(StrEnum):
    """What can happen to a batch; cmdlet-driven actions carry the cmdlet's name."""

    START = "Start-MigrationBatch"
    STOP = "Stop-MigrationBatch"
    COMPLETE = "Complete-MigrationBatch"
    REMOVE = "Remove-MigrationBatch"
    SET = "Set-MigrationBatch"
    SYNC_NOW = "Set-MigrationBatch -SyncNow"
    WAIT = "wait for StartAfter"
    RUN = "begin copying"
    INITIAL_SYNC_DONE = "finish the initial sync"
    INCREMENTAL_BEGIN = "begin an incremental sync"
    INCREMENTAL_DONE = "finish an incremental sync"
    STOP_DONE = "finish stopping"
    COMPLETE_DONE = "finish completing"
    FAIL = "fail"


class UserAction(StrEnum):
    """What can happen to one migration user."""

    QUEUE = "queue"
    BEGIN = "begin syncing"
    SUCCEED = "finish syncing"
    FAIL = "fail"
    STOP = "stop"
    STOP_DONE = "finish stopping"
    COMPLETE = "begin completing"
    COMPLETE_DONE = "finish completing"
    REMOVE = "remove"


B = BatchStatus
U = UserStatus

#: (action, current status) -> statuses the action may lead to.
_BATCH_MOVES: Mapping[BatchAction, Mapping[BatchStatus, frozenset[BatchStatus]]] = {
    BatchAction.START: {
        s: frozenset({B.STARTING, B.WAITING})
        for s in (B.CREATED, B.STOPPED, B.FAILED, B.SYNCED_WITH_ERRORS, B.COMPLETED_WITH_ERRORS)
    },
    BatchAction.WAIT: {B.STARTING: frozenset({B.WAITING})},
    BatchAction.RUN: {s: frozenset({B.SYNCING}) for s in (B.STARTING, B.WAITING)},
    BatchAction.INITIAL_SYNC_DONE: {B.SYNCING: frozenset({B.SYNCED, B.SYNCED_WITH_ERRORS, B.FAILED})},
    BatchAction.INCREMENTAL_BEGIN: {s: frozenset({B.INCREMENTAL_SYNCING}) for s in (B.SYNCED, B.SYNCED_WITH_ERRORS)},
    BatchAction.INCREMENTAL_DONE: {B.INCREMENTAL_SYNCING: frozenset({B.SYNCED, B.SYNCED_WITH_ERRORS})},
    BatchAction.SYNC_NOW: {s: frozenset({B.INCREMENTAL_SYNCING}) for s in (B.SYNCED, B.SYNCED_WITH_ERRORS)},
    BatchAction.STOP: {
        s: frozenset({B.STOPPING})
        for s in (B.STARTING, B.WAITING, B.SYNCING, B.SYNCED, B.SYNCED_WITH_ERRORS, B.INCREMENTAL_SYNCING)
    },
    BatchAction.STOP_DONE: {B.STOPPING: frozenset({B.STOPPED})},
    BatchAction.COMPLETE: {s: frozenset({B.COMPLETING}) for s in (B.SYNCED, B.SYNCED_WITH_ERRORS, B.COMPLETED_WITH_ERRORS)},
    BatchAction.COMPLETE_DONE: {B.COMPLETING: frozenset({B.COMPLETED, B.COMPLETED_WITH_ERRORS})},
    BatchAction.REMOVE: {
        s: frozenset({B.REMOVING})
        for s in (
            B.CREATED, B.STOPPED, B.FAILED, B.SYNCED, B.SYNCED_WITH_ERRORS, B.COMPLETED,
            B.COMPLETED_WITH_ERRORS, B.CORRUPTED, B.WAITING,
        )
    },
    BatchAction.SET: {
        s: frozenset({s})
        for s in B
        if s not in (B.REMOVING, B.COMPLETING, B.STOPPING, B.CORRUPTED)
    },
    BatchAction.FAIL: {
        s: frozenset({B.FAILED})
        for s in (B.STARTING, B.WAITING, B.SYNCING, B.INCREMENTAL_SYNCING, B.COMPLETING, B.STOPPING)
    },
}

_USER_MOVES: Mapping[UserAction, Mapping[UserStatus, frozenset[UserStatus]]] = {
    UserAction.QUEUE: {
        s: frozenset({U.QUEUED})
        for s in (U.QUEUED, U.STOPPED, U.FAILED, U.SYNCED, U.INCREMENTAL_FAILED, U.INCREMENTAL_STOPPED,
                  U.COMPLETION_FAILED, U.SYNCING, U.INCREMENTAL_SYNCING, U.COMPLETING)
    },
    UserAction.BEGIN: {U.QUEUED: frozenset({U.SYNCING, U.INCREMENTAL_SYNCING, U.COMPLETING})},
    UserAction.SUCCEED: {
        U.SYNCING: frozenset({U.SYNCED}),
        U.INCREMENTAL_SYNCING: frozenset({U.SYNCED}),
        U.COMPLETING: frozenset({U.COMPLETED}),
    },
    UserAction.FAIL: {
        U.QUEUED: frozenset({U.FAILED}),
        U.SYNCING: frozenset({U.FAILED}),
        U.INCREMENTAL_SYNCING: frozenset({U.INCREMENTAL_FAILED}),
        U.COMPLETING: frozenset({U.COMPLETION_FAILED}),
    },
    UserAction.STOP: {
        s: frozenset({U.STOPPING, U.STOPPED, U.INCREMENTAL_STOPPED})
        for s in (U.QUEUED, U.SYNCING, U.INCREMENTAL_SYNCING, U.SYNCED)
    },
    UserAction.STOP_DONE: {U.STOPPING: frozenset({U.STOPPED, U.INCREMENTAL_STOPPED})},
    UserAction.COMPLETE: {
        s: frozenset({U.QUEUED}) for s in (U.SYNCED, U.INCREMENTAL_FAILED, U.COMPLETION_FAILED, U.FAILED)
    },
    UserAction.COMPLETE_DONE: {U.COMPLETING: frozenset({U.COMPLETED, U.COMPLETION_FAILED})},
    UserAction.REMOVE: {s: frozenset({U.REMOVING}) for s in U if s is not U.REMOVING},
}


class IllegalTransition(MigrationError):
    """Raised when an action is not allowed in the current status."""

    scope = Scope.BATCH

    def __init__(self, what: str, action: str, current: str, allowed_from: list[str]) -> None:
        allowed = ", ".join(allowed_from) or "no status"
        super().__init__(
            f"{action} can't be done on {what} while its status is {current}; "
            f"it is allowed when the status is {allowed}"
        )
        self.action = action
        self.current = current
        self.allowed_from = allowed_from


S = TypeVar("S", BatchStatus, UserStatus)
A = TypeVar("A", BatchAction, UserAction)


def _move(table: Mapping[A, Mapping[S, frozenset[S]]], what: str, action: A, current: S, new: S) -> S:
    moves = table[action]
    if new not in moves.get(current, frozenset()):
        # The statuses from which the action leads to ``new``; for an action that keeps the
        # status (Set-MigrationBatch), those in which it can be done at all.
        allowed = [s.value for s in moves if new in moves[s]] or [s.value for s in moves if s is not current]
        raise IllegalTransition(what, action, current.value, allowed)
    return new


def move_batch(name: str, action: BatchAction, current: BatchStatus, new: BatchStatus) -> BatchStatus:
    """The status a batch takes when ``action`` leads it from ``current`` to ``new``.

    Raises:
        IllegalTransition: The table does not allow that move.
    """
    return _move(_BATCH_MOVES, f"migration batch {name!r}", action, current, new)


def move_user(email: str, action: UserAction, current: UserStatus, new: UserStatus) -> UserStatus:
    """The status a migration user takes when ``action`` leads it from ``current`` to ``new``.

    Raises:
        IllegalTransition: The table does not allow that move.
    """
    return _move(_USER_MOVES, f"migration user {email!r}", action, current, new)


def parse_status(kind: type[S], text: str) -> S:
    """A status from its name, case-insensitively (Exchange documents ``SyncedwithErrors`` too)."""
    for member in kind:
        if member.value.lower() == text.strip().lower():
            return member
    names = ", ".join(m.value for m in kind)
    raise ValueError(f"{text!r} is not a {kind.__name__}; use one of {names}")
