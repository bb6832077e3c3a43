"""Every tunable of the engine, as a named constant with its unit.

Configuration may override these names and nothing else.
"""

from __future__ import annotations

__all__ = [
    "APPEND_CHUNK_BYTES",
    "BATCH_NAME_MAX_LENGTH",
    "ENDPOINT_MAX_CONCURRENT_INCREMENTAL_SYNCS",
    "ENDPOINT_MAX_CONCURRENT_MIGRATIONS",
    "INCREMENTAL_SYNC_INTERVAL_SECONDS",
    "LEASE_SECONDS",
    "LEGACY_MAX_CONCURRENT_MIGRATIONS",
    "MAX_NUMBER_OF_BATCHES",
    "SCHEDULER_POLL_SECONDS",
    "SERVICE_MAX_CONCURRENT_MIGRATIONS",
    "WORKER_THREADS",
    "APPEND_CHUNK_MESSAGES",
    "BAD_ITEM_LIMIT",
    "CONNECT_TIMEOUT_SECONDS",
    "IN_FLIGHT_BYTES",
    "PROCESS_IN_FLIGHT_BYTES",
    "LARGE_ITEM_LIMIT",
    "LATE_COMMIT_GRACE_SECONDS",
    "LATE_COMMIT_POLL_SECONDS",
    "MAX_ITEM_BYTES",
    "METADATA_BATCH_MESSAGES",
    "DIGEST_BATCH_MESSAGES",
    "RECONNECT_ATTEMPTS",
    "RECONNECT_BACKOFF_MAX_SECONDS",
    "RECONNECT_BACKOFF_START_SECONDS",
    "SQLITE_BUSY_TIMEOUT_SECONDS",
    "THROTTLE_DEFAULT_PAUSE_SECONDS",
    "THROTTLE_MAX_PAUSE_SECONDS",
    "UNLIMITED",
]

#: Items larger than this are skipped and counted as large items (Exchange Online's 35 MB).
MAX_ITEM_BYTES = 35 * 1024 * 1024

#: Skipped bad items allowed before a mailbox fails; Exchange's default is 0.
BAD_ITEM_LIMIT = 0

#: Skipped large items allowed before a mailbox fails; Exchange's default is 0.
LARGE_ITEM_LIMIT = 0

#: Value of an item limit that means "no limit" (Exchange's ``Unlimited``).
UNLIMITED = -1

#: Bytes of message bodies fetched and appended as one chunk (one MULTIAPPEND, one commit).
APPEND_CHUNK_BYTES = 8 * 1024 * 1024

#: Messages at most in one chunk, however small they are.
APPEND_CHUNK_MESSAGES = 500

#: Message bodies held in memory at once between the fetching and the appending thread, in
#: bytes; a single larger message is still let through alone, so memory stays bounded by
#: ``max(IN_FLIGHT_BYTES, largest message)``.
IN_FLIGHT_BYTES = 24 * 1024 * 1024

#: The same bound for a whole process that runs several syncs at once (the migration service,
#: ``mailshift sync --mailboxes``): they share it, so the process's memory does not grow with
#: the number of mailboxes copied at a time. Twice one sync's, so that two syncs each keep the
#: pipeline full; more share it.
PROCESS_IN_FLIGHT_BYTES = 2 * IN_FLIGHT_BYTES

#: Longest wait, counted from when an interrupted run had sent an APPEND in full, for that
#: transaction to show on the target: a server goes on committing a MULTIAPPEND whose client
#: died after sending it, and copying its messages again before then would duplicate them.
LATE_COMMIT_GRACE_SECONDS = 30.0

#: Pause between two looks at the target while waiting for such a late commit.
LATE_COMMIT_POLL_SECONDS = 0.25

#: Messages whose metadata (size, date, flags, identifying headers) is fetched per command.
METADATA_BATCH_MESSAGES = 1000

#: Messages whose bodies are read per command to compare them by digest (matching messages
#: whose identities collide); few, since bodies may be large.
DIGEST_BATCH_MESSAGES = 20

#: Seconds to wait for a TCP connection and each server answer.
CONNECT_TIMEOUT_SECONDS = 60.0

#: Reconnections tried for one folder before the mailbox fails.
RECONNECT_ATTEMPTS = 6

#: First pause before reconnecting, in seconds; doubled at each failed attempt.
RECONNECT_BACKOFF_START_SECONDS = 0.5

#: Longest pause between two reconnection attempts, in seconds.
RECONNECT_BACKOFF_MAX_SECONDS = 30.0

#: Pause when a server throttles without saying for how long, in seconds.
THROTTLE_DEFAULT_PAUSE_SECONDS = 30.0

#: Longest pause honoured when a server suggests one, in seconds.
THROTTLE_MAX_PAUSE_SECONDS = 600.0

#: How long a SQLite connection waits for a lock before failing, in seconds.
SQLITE_BUSY_TIMEOUT_SECONDS = 30.0

#: Time between two incremental syncs of a synced mailbox, in seconds (Exchange: every 24 h).
INCREMENTAL_SYNC_INTERVAL_SECONDS = 24 * 3600

#: How long a worker's claim on a migration user lasts without renewal, in seconds; a user
#: whose lease ran out (its process died) is queued again by the sweeper.
LEASE_SECONDS = 120.0

#: Longest wait of the scheduler between two passes when nothing wakes it, in seconds.
SCHEDULER_POLL_SECONDS = 5.0

#: Mailboxes an endpoint copies at once in initial syncs (Exchange's default, 100).
ENDPOINT_MAX_CONCURRENT_MIGRATIONS = 100

#: Mailboxes an endpoint syncs at once in incremental syncs (Exchange's default, 20).
ENDPOINT_MAX_CONCURRENT_INCREMENTAL_SYNCS = 20

#: Largest MaxConcurrentMigrations of a 2010-style ``New-MigrationBatch -Imap`` (1 to 10).
LEGACY_MAX_CONCURRENT_MIGRATIONS = 10

#: Mailboxes the whole service copies at once (Exchange Online's tenant limit, 300).
SERVICE_MAX_CONCURRENT_MIGRATIONS = 300

#: Batches that may exist at once (Exchange Online's MaxNumberOfBatches, 100).
MAX_NUMBER_OF_BATCHES = 100

#: Longest batch name, in characters.
BATCH_NAME_MAX_LENGTH = 64

#: Threads that run mailbox syncs in the service process.
WORKER_THREADS = 16
