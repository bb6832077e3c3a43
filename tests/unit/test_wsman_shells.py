"""Shell and command state: ownership, quota, idle reaping, long-poll, chunking, signals (no HTTP)."""

from __future__ import annotations

import threading
import time

import pytest

from shim.wsman import constants as c
from shim.wsman.faults import CommandNotFound, ShellNotFound, ShellQuotaExceeded
from shim.wsman.shells import CommandJob, CommandResult, ShellRegistry


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def gated(gate: threading.Event, result: CommandResult) -> CommandJob:
    """A job that finishes with ``result`` once ``gate`` is set (or after 5 s)."""

    def job() -> CommandResult:
        gate.wait(5)
        return result

    return job


def new_registry(clock: Clock | None = None, *, idle: float = 60.0, limit: int = 3) -> ShellRegistry:
    return ShellRegistry(idle_timeout=idle, max_shells_per_user=limit, clock=clock or Clock())


def open_shell(registry: ShellRegistry, owner: str = "alice") -> str:
    return registry.create(owner, codepage=437, input_streams="stdin", output_streams="stdout stderr").shell_id


def test_shells_belong_to_their_owner() -> None:
    registry = new_registry()
    shell_id = open_shell(registry)
    with registry.use(shell_id, "alice") as shell:
        assert shell.owner == "alice"
    with pytest.raises(ShellNotFound, match=shell_id), registry.use(shell_id, "bob"):
        pass
    with pytest.raises(ShellNotFound):
        registry.delete(shell_id, "bob")
    registry.delete(shell_id, "alice")
    with pytest.raises(ShellNotFound), registry.use(shell_id, "alice"):
        pass


def test_quota_is_per_user_and_freed_by_delete() -> None:
    registry = new_registry(limit=2)
    first = open_shell(registry)
    open_shell(registry)
    with pytest.raises(ShellQuotaExceeded, match="maximum number of shells for this user has been exceeded"):
        open_shell(registry)
    open_shell(registry, "bob")
    registry.delete(first, "alice")
    open_shell(registry)
    assert (registry.count("alice"), registry.count()) == (2, 3)


def test_idle_shells_are_reaped_but_not_while_in_use() -> None:
    clock = Clock()
    registry = new_registry(clock, idle=10.0)
    idle, busy = open_shell(registry), open_shell(registry)
    with registry.use(busy, "alice"):
        clock.now += 11
        assert registry.reap() == 1
        with pytest.raises(ShellNotFound), registry.use(idle, "alice"):
            pass
    clock.now += 5
    assert registry.reap() == 0  # used 5 s ago
    clock.now += 6
    assert registry.reap() == 1
    assert registry.count() == 0


def test_reaping_abandons_running_commands_and_lets_threads_finish() -> None:
    clock = Clock()
    registry = new_registry(clock, idle=10.0)
    release = threading.Event()
    with registry.use(open_shell(registry), "alice") as shell:
        run = shell.start_command(gated(release, CommandResult(b"late", b"", 0)))
    clock.now += 11
    assert registry.reap() == 1
    with pytest.raises(CommandNotFound):
        run.take_output(100, 0)
    release.set()
    assert run.thread is not None
    run.thread.join(5)
    assert not run.thread.is_alive()


def test_take_output_waits_then_chunks_stdout_before_stderr() -> None:
    registry = new_registry()
    release = threading.Event()
    with registry.use(open_shell(registry), "alice") as shell:
        run = shell.start_command(gated(release, CommandResult(b"0123456789", b"abcde", 7)))
    started = time.monotonic()
    assert run.take_output(4, 0.2) is None
    assert time.monotonic() - started >= 0.2
    release.set()
    chunks = [run.take_output(4, 5) for _ in range(4)]
    assert [(ch.stdout, ch.stderr, ch.done) for ch in chunks if ch] == [
        (b"0123", b"", False),
        (b"4567", b"", False),
        (b"89", b"ab", False),
        (b"", b"cde", True),
    ]
    assert chunks[-1] is not None and chunks[-1].exit_code == 7
    again = run.take_output(4, 0)
    assert again is not None and (again.stdout, again.done, again.exit_code) == (b"", True, 7)


def test_terminate_forgets_the_command_and_wakes_a_waiting_receive() -> None:
    registry = new_registry()
    release = threading.Event()
    shell_id = open_shell(registry)
    with registry.use(shell_id, "alice") as shell:
        run = shell.start_command(gated(release, CommandResult(b"x", b"", 0)))
    outcome: list[BaseException] = []

    def receive() -> None:
        try:
            run.take_output(100, 10)
        except CommandNotFound as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=receive)
    waiter.start()
    time.sleep(0.1)
    with registry.use(shell_id, "alice") as shell:
        shell.remove_command(run.command_id)
        with pytest.raises(CommandNotFound):
            shell.command(run.command_id)
        with pytest.raises(CommandNotFound):
            shell.remove_command(run.command_id)
    waiter.join(5)
    assert len(outcome) == 1
    release.set()


def test_ctrl_c_finishes_a_running_command_with_the_windows_exit_code() -> None:
    registry = new_registry()
    release = threading.Event()
    with registry.use(open_shell(registry), "alice") as shell:
        run = shell.start_command(gated(release, CommandResult(b"too late", b"", 0)))
        shell.command(run.command_id).interrupt(c.EXIT_CODE_CTRL_C)
    release.set()
    assert run.thread is not None
    run.thread.join(5)
    chunk = run.take_output(100, 0)
    assert chunk is not None and (chunk.stdout, chunk.done, chunk.exit_code) == (b"", True, c.EXIT_CODE_CTRL_C)


def test_a_crashing_job_still_finishes_its_command(caplog: pytest.LogCaptureFixture) -> None:
    def crash() -> CommandResult:
        raise RuntimeError("interpreter bug")

    registry = new_registry()
    with registry.use(open_shell(registry), "alice") as shell:
        run = shell.start_command(crash)
    chunk = run.take_output(100, 5)
    assert chunk is not None and (chunk.done, chunk.exit_code) == (True, c.EXIT_CODE_RUNNER_FAILED)
    assert "interpreter bug" in caplog.text


def test_waiting_on_one_command_does_not_block_another_shell() -> None:
    registry = new_registry()
    blocked = threading.Event()
    with registry.use(open_shell(registry), "alice") as shell:
        slow = shell.start_command(gated(blocked, CommandResult(b"", b"", 0)))
    waiter = threading.Thread(target=slow.take_output, args=(10, 2))
    waiter.start()
    time.sleep(0.05)
    started = time.monotonic()
    other_id = open_shell(registry, "bob")
    with registry.use(other_id, "bob") as other:
        fast = other.start_command(lambda: CommandResult(b"hi", b"", 0))
    chunk = fast.take_output(10, 2)
    assert chunk is not None and chunk.stdout == b"hi"
    assert time.monotonic() - started < 0.5
    blocked.set()
    waiter.join(5)


@pytest.mark.parametrize(("idle", "limit"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_registry_refuses_unusable_settings(idle: float, limit: int) -> None:
    with pytest.raises(ValueError):
        ShellRegistry(idle_timeout=idle, max_shells_per_user=limit)
