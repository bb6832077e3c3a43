"""Every batch cmdlet in every batch status, through the service: allowed where Exchange allows
it (plus Mailshift's documented decisions), refused everywhere else with the current status.

The batch is put into each status by writing the status column of the catalog directly (a
test-only shortcut: reaching Corrupted or Removing through real syncs is not possible on
purpose), then each cmdlet is called as the shim will call it. No server is needed: the
scheduler is off and the endpoint is created without verification.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Iterator

import pytest

from engine.service import MigrationService
from engine.status import BatchStatus, IllegalTransition

B = BatchStatus

#: Where each cmdlet is allowed: reference/cmdlets.md §4.1 "Allowed actions", widened by the
#: decisions in the README (Complete on IMAP batches; Stop also pauses incremental syncs and a
#: batch that is still starting or waiting for StartAfter; Start retries CompletedWithErrors).
ALLOWED: dict[str, set[BatchStatus]] = {
    "Start-MigrationBatch": {B.CREATED, B.STOPPED, B.FAILED, B.SYNCED_WITH_ERRORS, B.COMPLETED_WITH_ERRORS},
    "Stop-MigrationBatch": {B.STARTING, B.WAITING, B.SYNCING, B.SYNCED, B.SYNCED_WITH_ERRORS, B.INCREMENTAL_SYNCING},
    "Complete-MigrationBatch": {B.SYNCED, B.SYNCED_WITH_ERRORS, B.COMPLETED_WITH_ERRORS},
    "Remove-MigrationBatch": {
        B.CREATED, B.STOPPED, B.FAILED, B.SYNCED, B.SYNCED_WITH_ERRORS, B.COMPLETED, B.COMPLETED_WITH_ERRORS,
        B.CORRUPTED, B.WAITING,
    },
    "Set-MigrationBatch -SyncNow": {B.SYNCED, B.SYNCED_WITH_ERRORS},
    "Set-MigrationBatch": set(B) - {B.REMOVING, B.COMPLETING, B.STOPPING, B.CORRUPTED},
}

#: The cmdlet calls, as the shim makes them.
CALLS: dict[str, Callable[[MigrationService, str], object]] = {
    "Start-MigrationBatch": lambda s, n: s.start_batch(n),
    "Stop-MigrationBatch": lambda s, n: s.stop_batch(n),
    "Complete-MigrationBatch": lambda s, n: s.complete_batch(n),
    "Remove-MigrationBatch": lambda s, n: s.remove_batch(n),
    "Set-MigrationBatch -SyncNow": lambda s, n: s.set_batch(n, sync_now=True),
    "Set-MigrationBatch": lambda s, n: s.set_batch(n, bad_item_limit=3),
}

_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MigrationService]:
    made = MigrationService(tmp_path_factory.mktemp("transitions") / "instance", run_scheduler=False)
    made.new_endpoint("Source", "imap.contoso.edu", port=143, security="None", skip_verification=True)
    yield made
    made.close()


def batch_in(service: MigrationService, status: BatchStatus) -> str:
    """A fresh one-user batch whose status is ``status``."""
    n = next(_numbers)
    name = f"B{n}"
    csv_data = f"EmailAddress,UserName,Password\r\nuser{n}@contoso.edu,user{n},Pa$$word{n}\r\n".encode()
    service.new_batch(name, csv_data, source_endpoint="Source")
    db = sqlite3.connect(service.database)
    try:
        with db:
            db.execute("UPDATE batch SET status=? WHERE name=?", (status.value, name))
    finally:
        db.close()
    assert service.get_batches(name)[0].status == status.value
    return name


@pytest.mark.parametrize("status", list(B), ids=[s.value for s in B])
@pytest.mark.parametrize("cmdlet", list(CALLS))
def test_every_cmdlet_in_every_batch_status(service: MigrationService, cmdlet: str, status: BatchStatus) -> None:
    name = batch_in(service, status)
    if status in ALLOWED[cmdlet]:
        CALLS[cmdlet](service, name)
        return
    with pytest.raises(IllegalTransition) as refused:
        CALLS[cmdlet](service, name)
    # -SyncNow is a Set-MigrationBatch: where Set itself is refused, that is the refusal named.
    refusing = cmdlet
    if cmdlet == "Set-MigrationBatch -SyncNow" and status not in ALLOWED["Set-MigrationBatch"]:
        refusing = "Set-MigrationBatch"
    message = str(refused.value)
    assert message.startswith(f"{refusing} can't be done on migration batch '{name}' while its status is {status.value}")
    assert refused.value.current == status.value
    assert sorted(refused.value.allowed_from) == sorted(s.value for s in ALLOWED[refusing])
    assert service.get_batches(name)[0].status == status.value  # a refusal changes nothing
