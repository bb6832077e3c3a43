"""The status vocabulary and the table of allowed moves."""

import pytest

from engine.status import (
    BatchAction,
    BatchStatus,
    IllegalTransition,
    UserAction,
    UserStatus,
    move_batch,
    move_user,
    parse_status,
)

B = BatchStatus


def test_vocabularies_are_exchanges() -> None:
    assert len(BatchStatus) == 15 and len(UserStatus) == 21
    assert BatchStatus.SYNCED_WITH_ERRORS == "SyncedWithErrors"
    assert parse_status(BatchStatus, "syncedwitherrors") is B.SYNCED_WITH_ERRORS
    with pytest.raises(ValueError, match="is not a BatchStatus"):
        parse_status(BatchStatus, "Running")


def test_an_imap_batch_lifecycle_is_allowed() -> None:
    status = B.CREATED
    for action, new in [
        (BatchAction.START, B.STARTING),
        (BatchAction.RUN, B.SYNCING),
        (BatchAction.INITIAL_SYNC_DONE, B.SYNCED),
        (BatchAction.INCREMENTAL_BEGIN, B.INCREMENTAL_SYNCING),
        (BatchAction.INCREMENTAL_DONE, B.SYNCED),
        (BatchAction.STOP, B.STOPPING),
        (BatchAction.STOP_DONE, B.STOPPED),
        (BatchAction.START, B.STARTING),
        (BatchAction.RUN, B.SYNCING),
        (BatchAction.INITIAL_SYNC_DONE, B.SYNCED_WITH_ERRORS),
        (BatchAction.COMPLETE, B.COMPLETING),
        (BatchAction.COMPLETE_DONE, B.COMPLETED),
        (BatchAction.REMOVE, B.REMOVING),
    ]:
        status = move_batch("b", action, status, new)
    assert status is B.REMOVING


@pytest.mark.parametrize(
    ("action", "current", "new"),
    [
        (BatchAction.START, B.SYNCING, B.STARTING),
        (BatchAction.START, B.COMPLETED, B.STARTING),
        (BatchAction.STOP, B.CREATED, B.STOPPING),
        (BatchAction.STOP, B.COMPLETED, B.STOPPING),
        (BatchAction.COMPLETE, B.CREATED, B.COMPLETING),
        (BatchAction.COMPLETE, B.SYNCING, B.COMPLETING),
        (BatchAction.REMOVE, B.SYNCING, B.REMOVING),
        (BatchAction.SYNC_NOW, B.STOPPED, B.INCREMENTAL_SYNCING),
        (BatchAction.INITIAL_SYNC_DONE, B.SYNCING, B.COMPLETED),
    ],
)
def test_illegal_batch_moves_name_action_status_and_alternatives(
    action: BatchAction, current: BatchStatus, new: BatchStatus
) -> None:
    with pytest.raises(IllegalTransition) as refused:
        move_batch("MigrationBatch1", action, current, new)
    message = str(refused.value)
    assert f"can't be done on migration batch 'MigrationBatch1' while its status is {current.value}" in message
    assert refused.value.current == current.value
    assert current.value not in refused.value.allowed_from


def test_start_error_lists_the_statuses_that_allow_it() -> None:
    with pytest.raises(IllegalTransition) as refused:
        move_batch("b", BatchAction.START, B.SYNCING, B.STARTING)
    assert refused.value.allowed_from == ["Created", "Stopped", "Failed", "SyncedWithErrors", "CompletedWithErrors"]
    assert str(refused.value).startswith("Start-MigrationBatch can't be done")


def test_user_moves() -> None:
    u = UserStatus
    status = move_user("a@x", UserAction.BEGIN, u.QUEUED, u.SYNCING)
    status = move_user("a@x", UserAction.SUCCEED, status, u.SYNCED)
    status = move_user("a@x", UserAction.QUEUE, status, u.QUEUED)
    status = move_user("a@x", UserAction.BEGIN, status, u.INCREMENTAL_SYNCING)
    status = move_user("a@x", UserAction.FAIL, status, u.INCREMENTAL_FAILED)
    with pytest.raises(IllegalTransition, match="migration user 'a@x'"):
        move_user("a@x", UserAction.SUCCEED, status, u.SYNCED)
