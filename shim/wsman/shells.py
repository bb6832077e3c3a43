"""WinRS shells and their commands: thread-safe state, no protocol.

The registry's lock guards only its table of shells; each shell has its own lock for its
commands, and each command its own condition variable. A Receive long-polls on one command's
condition, so concurrent Receives never wait behind each other or behind a global lock.
Each command runs in its own daemon thread; a shell that is deleted, reaped or signalled to
terminate abandons its commands (waiters are woken) and lets their threads run to the end.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from shim.shelltable import ShellTable
from shim.wsman import constants as c
from shim.wsman.faults import CommandNotFound, ShellNotFound, ShellQuotaExceeded

__all__ = ["CommandJob", "CommandResult", "CommandRun", "OutputChunk", "Shell", "ShellRegistry"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CommandResult:
    """What a finished command wrote, as bytes for the wire."""

    stdout: bytes
    stderr: bytes
    exit_code: int


#: The work a command does in its thread.
CommandJob = Callable[[], CommandResult]


@dataclass(frozen=True)
class OutputChunk:
    """Output taken by one Receive; ``done`` when it is the last of it and the command has finished."""

    stdout: bytes
    stderr: bytes
    done: bool
    exit_code: int


class CommandRun:
    """One command: its output buffers, its state, and the condition Receives wait on."""

    def __init__(self, command_id: str, shell_id: str) -> None:
        self.command_id = command_id
        self.shell_id = shell_id
        self._cond = threading.Condition()
        self._stdout = bytearray()
        self._stderr = bytearray()
        self._finished = False
        self._abandoned = False
        self._exit_code = 0
        self.thread: threading.Thread | None = None

    @property
    def finished(self) -> bool:
        """True once the command has a result (or was interrupted)."""
        with self._cond:
            return self._finished

    def finish(self, result: CommandResult) -> None:
        """Store the result and wake Receives; ignored when already finished (e.g. after Ctrl+C)."""
        with self._cond:
            if self._finished or self._abandoned:
                return
            self._stdout += result.stdout
            self._stderr += result.stderr
            self._exit_code = result.exit_code
            self._finished = True
            self._cond.notify_all()

    def interrupt(self, exit_code: int) -> None:
        """Finish a running command now with ``exit_code`` and no further output (Ctrl+C)."""
        self.finish(CommandResult(b"", b"", exit_code))

    def abandon(self) -> None:
        """Forget the command: waiting Receives fail with CommandNotFound; its thread's result is dropped."""
        with self._cond:
            self._abandoned = True
            self._stdout.clear()
            self._stderr.clear()
            self._cond.notify_all()

    def take_output(self, max_bytes: int, wait_seconds: float) -> OutputChunk | None:
        """Wait up to ``wait_seconds`` for the result, then take up to ``max_bytes`` of output (stdout first).

        Returns:
            The chunk, or None when the command is still running after ``wait_seconds``.

        Raises:
            CommandNotFound: when the command was abandoned before or while waiting.
        """
        with self._cond:
            self._cond.wait_for(lambda: self._finished or self._abandoned, timeout=max(wait_seconds, 0.0))
            if self._abandoned:
                raise CommandNotFound(_command_missing_message(self.command_id))
            if not self._finished:
                return None
            stdout = bytes(self._stdout[:max_bytes])
            del self._stdout[: len(stdout)]
            stderr = bytes(self._stderr[: max_bytes - len(stdout)])
            del self._stderr[: len(stderr)]
            done = not self._stdout and not self._stderr
            return OutputChunk(stdout, stderr, done, self._exit_code)


@dataclass
class Shell:
    """A WinRS shell: its owner, settings, commands and the time it was last used."""

    shell_id: str
    owner: str
    codepage: int
    input_streams: str
    output_streams: str
    last_used: float
    commands: dict[str, CommandRun] = field(default_factory=dict)
    #: Requests currently using the shell (a long-polling Receive keeps it from being reaped).
    active: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def command(self, command_id: str) -> CommandRun:
        """The shell's command with this id.

        Raises:
            CommandNotFound: when there is none.
        """
        with self.lock:
            run = self.commands.get(command_id)
        if run is None:
            raise CommandNotFound(_command_missing_message(command_id))
        return run

    def start_command(self, job: CommandJob) -> CommandRun:
        """Register a new command and run ``job`` in a daemon thread; returns at once."""
        run = CommandRun(str(uuid.uuid4()).upper(), self.shell_id)
        with self.lock:
            self.commands[run.command_id] = run
        thread = threading.Thread(target=_run_job, args=(run, job), name=f"wsman-command-{run.command_id}", daemon=True)
        run.thread = thread
        thread.start()
        return run

    def remove_command(self, command_id: str) -> None:
        """Terminate a command: forget it and wake its waiters.

        Raises:
            CommandNotFound: when the shell has no such command.
        """
        with self.lock:
            run = self.commands.pop(command_id, None)
        if run is None:
            raise CommandNotFound(_command_missing_message(command_id))
        run.abandon()

    def abandon_all(self) -> None:
        """Forget every command (the shell is going away)."""
        with self.lock:
            runs = list(self.commands.values())
            self.commands.clear()
        for run in runs:
            run.abandon()

    def release(self) -> None:
        """The shell left the registry: its commands are abandoned, their threads left to finish."""
        self.abandon_all()


def _run_job(run: CommandRun, job: CommandJob) -> None:
    try:
        result = job()
    except Exception:  # the job wraps foreign code; a crash must still end the command for its Receives
        _log.exception("WinRS command %s failed", run.command_id)
        result = CommandResult(b"", b"", c.EXIT_CODE_RUNNER_FAILED)
    run.finish(result)


def _command_missing_message(command_id: str) -> str:
    return (
        "The Windows Remote Shell received a request to perform an operation on a command identifier that does not exist. "
        f"Either the command has completed execution or the client specified an invalid command identifier ({command_id})."
    )


def _shell_missing_message(shell_id: str) -> str:
    return (
        f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell was not found on the server. "
        "Possible causes are: the specified ShellId is incorrect or the shell no longer exists on the server. "
        "Provide the correct ShellId or create a new shell and retry the operation."
    )


class ShellRegistry(ShellTable[Shell]):
    """All open WinRS shells, by id; each belongs to the user who created it.

    Args:
        idle_timeout: seconds without any request after which a shell is deleted.
        max_shells_per_user: how many shells one user may hold at once.
        clock: monotonic time source in seconds (replaced in tests).
    """

    def __init__(
        self,
        *,
        idle_timeout: float = c.DEFAULT_SHELL_IDLE_TIMEOUT_SECONDS,
        max_shells_per_user: int = c.DEFAULT_MAX_SHELLS_PER_USER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            kind="WinRS shell", idle_timeout=idle_timeout, max_per_owner=max_shells_per_user,
            unknown=lambda shell_id: ShellNotFound(_shell_missing_message(shell_id)),
            over_limit=lambda owner, limit: ShellQuotaExceeded(
                "The WS-Management service cannot process the request because the maximum number of shells for this "
                f"user has been exceeded ({limit}). Close existing shells or raise the quota for this user."),
            clock=clock,
        )

    @property
    def max_shells_per_user(self) -> int:
        """How many shells one user may hold at once."""
        return self.max_per_owner

    def create(self, owner: str, *, codepage: int, input_streams: str, output_streams: str) -> Shell:
        """Open a shell for ``owner``.

        Raises:
            ShellQuotaExceeded: when the owner already holds ``max_shells_per_user`` shells.
        """
        shell = Shell(str(uuid.uuid4()).upper(), owner, codepage, input_streams, output_streams, last_used=self.now())
        self.add(shell)
        return shell
