"""A PSRP shell: one psrpcore server runspace pool, its pipelines, and what each Receive is waiting for.

Transport-free: the WS-Management door hands in the bytes of Create, Command and Send, and takes
out PSRP fragments per target (the pool, or one pipeline) with :meth:`RunspaceShell.receive`.
Each shell has its own lock; a Receive waits on the shell's condition variable (which releases
the lock), so Receives on the pool and on several pipelines wait side by side, and other shells
are never held up. Each pipeline runs in its own daemon thread against a fresh registry session.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psrpcore
from psrpcore import types as pst

from shim.cmdlets import Session
from shim.errors import ShimError
from shim.psrp import constants as k
from shim.psrp.metadata import command_metadata
from shim.psrp.runner import PipelineHost, PipelineStopped, StopToken, run_pipeline
from shim.psrp.values import error_record, from_wire, to_wire

__all__ = ["PSRPError", "ProtocolFailure", "ReceiveChunk", "RunspaceShell", "SessionFactory", "UnknownCommand"]

_log = logging.getLogger(__name__)

#: ``make_session(user) -> Session``: a registry session for the administrator running a pipeline.
SessionFactory = Callable[[str], Session]

_INTERNAL_ERROR = "Mailshift could not run the command because of an internal error; the service log has the details."


class PSRPError(ShimError):
    """Root of the PSRP shell's refusals (the door turns them into WS-Management faults)."""


class UnknownCommand(PSRPError):
    """Raised when a CommandId names no pipeline of the shell (unknown, or already terminated)."""


class ProtocolFailure(PSRPError):
    """Raised when the client's PSRP data cannot be used (bad fragments, unknown message, state error)."""


class ShellClosed(PSRPError):
    """Raised to Receives waiting on a shell that was deleted or reaped meanwhile."""


@dataclass(frozen=True)
class ReceiveChunk:
    """PSRP fragments for one ReceiveResponse; ``done`` when the pipeline has finished and this is its last data."""

    payloads: list[bytes]
    done: bool


@dataclass
class _Run:
    """One pipeline: psrpcore's state machine, its input, its thread and its stop token."""

    command_id: str
    server: psrpcore.ServerPipeline
    stop: StopToken = field(default_factory=StopToken)
    metadata: Any = None
    no_input: bool = True
    pipeline_input: list[Any] = field(default_factory=list)
    input_ended: bool = False
    started: bool = False
    #: The terminal state message is queued; a Receive that empties the queue reports Done.
    done: bool = False


def application_private_data(command_names: list[str]) -> dict[str, Any]:
    """What the server reports in ApplicationPrivateData: PSVersionTable (Windows PowerShell 5.1) and Exchange's ImplicitRemoting hash."""
    version = pst.PSVersion(k.PS_VERSION)
    return {
        "PSVersionTable": {
            "PSVersion": version,
            "PSEdition": "Desktop",
            "BuildVersion": pst.PSVersion(k.PS_BUILD_VERSION),
            "CLRVersion": pst.PSVersion(k.CLR_VERSION),
            "WSManStackVersion": pst.PSVersion(k.WSMAN_STACK_VERSION),
            "PSCompatibleVersions": [pst.PSVersion(v) for v in ("1.0", "2.0", "3.0", "4.0", "5.0", k.PS_VERSION)],
        },
        "ImplicitRemoting": {"Hash": zlib.crc32("\n".join(sorted(command_names)).encode()) - 2**31},
    }


class RunspaceShell:
    """A PSRP shell (one runspace pool) owned by one administrator.

    Args:
        shell_id: the id the client chose (Windows reuses it), upper-case.
        owner: the administrator's name.
        configuration: ``Microsoft.Exchange`` or ``Microsoft.PowerShell``.
        make_session: builds the registry session a pipeline runs with.
        fragment_size: largest PSRP fragment queued for one Receive.
        compression: the client asked for xpress compression (streams are then framed in blocks).
    """

    def __init__(self, shell_id: str, owner: str, configuration: str, make_session: SessionFactory, *,
                 fragment_size: int = k.MAX_FRAGMENT_BYTES, compression: bool = False, last_used: float = 0.0) -> None:
        self.shell_id = shell_id
        self.owner = owner
        self.configuration = configuration
        self.compression = compression
        self.fragment_size = max(k.MIN_FRAGMENT_BYTES, min(fragment_size, k.MAX_FRAGMENT_BYTES))
        self.last_used = last_used
        #: Requests currently using the shell (a long-polling Receive keeps it from being reaped).
        self.active = 0
        self._make_session = make_session
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._cmdlets = make_session(owner).registry.cmdlets
        names = [c.name for c in self._cmdlets]
        self._pool = psrpcore.ServerRunspacePool(application_private_data=application_private_data(names))
        self._queues: dict[uuid.UUID | None, deque[bytes]] = {None: deque()}
        self._runs: dict[uuid.UUID, _Run] = {}
        self._closed = False

    # --- requests ---------------------------------------------------------------------------

    def open(self, creation_xml: bytes) -> None:
        """Feed the Create's creationXml (SESSION_CAPABILITY and INIT_RUNSPACEPOOL); the replies wait for a Receive.

        Raises:
            ProtocolFailure: when the data is not a PSRP runspace pool opening.
        """
        with self._lock:
            self._feed(psrpcore.PSRPPayload(creation_xml, psrpcore.StreamType.default, None))
            if self._pool.state != pst.RunspacePoolState.Opened:
                raise ProtocolFailure("The creationXml did not open a runspace pool (SESSION_CAPABILITY and "
                                      "INIT_RUNSPACEPOOL are needed).")

    def command(self, command_id: str, data: bytes) -> None:
        """Start pipeline ``command_id`` with the first fragment of its CREATE_PIPELINE or GET_COMMAND_METADATA.

        Raises:
            ProtocolFailure: when the id is not a GUID, is in use, or the data is not PSRP.
        """
        pipeline_id = _pipeline_id(command_id)
        with self._lock:
            self._check_open()
            if pipeline_id in self._runs:
                raise ProtocolFailure(f"A pipeline with the CommandId {command_id} already exists in this shell.")
            run = _Run(command_id, psrpcore.ServerPipeline(self._pool, pipeline_id))
            self._runs[pipeline_id] = run
            self._queues[pipeline_id] = deque()
            try:
                self._feed(psrpcore.PSRPPayload(data, psrpcore.StreamType.default, pipeline_id))
            except ProtocolFailure:
                self._discard(pipeline_id)
                raise

    def send(self, command_id: str | None, stream: str, data: bytes) -> None:
        """More PSRP data from the client: further fragments, pipeline input, host responses (stream ``pr``).

        Raises:
            UnknownCommand: when ``command_id`` names no pipeline.
            ProtocolFailure: when the data is not PSRP.
        """
        stream_type = psrpcore.StreamType.prompt_response if stream.lower() == "pr" else psrpcore.StreamType.default
        with self._lock:
            self._check_open()
            pipeline_id = None if command_id is None else self._run(command_id).server.pipeline_id
            self._feed(psrpcore.PSRPPayload(data, stream_type, pipeline_id))

    def receive(self, command_id: str | None, budget: int, wait_seconds: float, *,
                overhead: int = 0) -> ReceiveChunk | None:
        """Wait up to ``wait_seconds`` for data for the pool (``command_id`` None) or a pipeline; take up to ``budget`` bytes.

        Each payload taken counts ``overhead`` bytes more (its element in the response).

        Returns:
            The fragments (whole payloads only), or None when nothing came in time.

        Raises:
            UnknownCommand: when the pipeline is unknown or was terminated while waiting.
            ShellClosed: when the shell was deleted while waiting.
            PSRPError: when ``budget`` cannot hold the next payload.
        """
        deadline = time.monotonic() + max(wait_seconds, 0.0)
        with self._lock:
            run = None if command_id is None else self._run(command_id)
            target = None if run is None else run.server.pipeline_id

            def ready() -> bool:
                if self._closed or target not in self._queues:
                    return True
                return bool(self._queues[target]) or (run is not None and run.done)

            while not ready():
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)
            if self._closed:
                raise ShellClosed("The runspace pool was closed.")
            queue = self._queues.get(target)
            if queue is None:
                raise UnknownCommand(f"The pipeline {command_id} was terminated.")
            payloads: list[bytes] = []
            used = 0
            while queue and used + len(queue[0]) + overhead <= budget:
                used += len(queue[0]) + overhead
                payloads.append(queue.popleft())
            if queue and not payloads:
                raise PSRPError(f"The client's MaxEnvelopeSize leaves {budget} bytes for output, less than one "
                                f"PSRP fragment ({len(queue[0])} bytes).")
            done = run is not None and run.done and not queue
            if done and run is not None:
                self._discard_queue_only(run)
            return ReceiveChunk(payloads, done)

    def stop(self, command_id: str) -> None:
        """Ctrl+C: stop a running pipeline (its state becomes Stopped; its thread stops at the next call)."""
        with self._lock:
            run = self._run(command_id)
            run.stop.set()
            self._stop_locked(run)
            self._changed.notify_all()

    def terminate(self, command_id: str) -> None:
        """Terminate signal: stop the pipeline if it runs and forget it.

        Raises:
            UnknownCommand: when there is no such pipeline.
        """
        with self._lock:
            run = self._run(command_id)
            run.stop.set()
            self._stop_locked(run)
            self._discard(run.server.pipeline_id)
            self._changed.notify_all()

    def close(self) -> None:
        """Delete or reap: stop every pipeline and wake every waiting Receive."""
        with self._lock:
            self._closed = True
            for run in list(self._runs.values()):
                run.stop.set()
            self._runs.clear()
            self._queues.clear()
            self._changed.notify_all()

    def release(self) -> None:
        """The registry let the pool go (Delete or idle expiry)."""
        self.close()

    @property
    def pipeline_count(self) -> int:
        """Pipelines the shell holds (running or waiting to be read)."""
        with self._lock:
            return len(self._runs)

    # --- internals (the lock is held) ----------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ShellClosed("The runspace pool was closed.")

    def _run(self, command_id: str) -> _Run:
        try:
            pipeline_id = uuid.UUID(command_id)
        except ValueError:
            raise UnknownCommand(f"There is no pipeline with the CommandId {command_id}.") from None
        run = self._runs.get(pipeline_id)
        if run is None:
            raise UnknownCommand(f"There is no pipeline with the CommandId {command_id}.")
        return run

    def _discard(self, pipeline_id: uuid.UUID) -> None:
        run = self._runs.pop(pipeline_id, None)
        self._queues.pop(pipeline_id, None)
        if run is not None and run.server.state != pst.PSInvocationState.Running:
            run.server.close()
        else:
            self._pool.pipeline_table.pop(pipeline_id, None)

    def _discard_queue_only(self, run: _Run) -> None:
        """After the last Receive of a finished pipeline: its state machine goes; the id stays until Terminate."""
        if run.server.state != pst.PSInvocationState.Running:
            self._pool.pipeline_table.pop(run.server.pipeline_id, None)

    def _feed(self, payload: psrpcore.PSRPPayload) -> None:
        try:
            self._pool.receive_data(payload)
            while True:
                event = self._pool.next_event()
                if event is None:
                    break
                self._on_event(event)
        except ProtocolFailure:
            raise
        except Exception as exc:  # psrpcore parses network data: any failure (struct, XML, state) is the client's
            _log.info("PSRP data refused in shell %s: %r", self.shell_id, exc)
            raise ProtocolFailure("The PSRP data could not be processed: it is not a valid PowerShell remoting "
                                  "message for this runspace pool's state (the service log has the details).") from exc
        finally:
            self._flush()

    def _on_event(self, event: psrpcore.PSRPEvent[Any, Any]) -> None:
        if isinstance(event, (psrpcore.CreatePipelineEvent, psrpcore.GetCommandMetadataEvent)):
            run = self._runs.get(event.pipeline_id) if event.pipeline_id else None
            if run is None:
                raise ProtocolFailure(f"PSRP data for an unknown pipeline {event.pipeline_id}.")
            run.metadata = event.pipeline
            run.no_input = not isinstance(event, psrpcore.CreatePipelineEvent) or bool(event.pipeline.no_input)
            if run.no_input:
                self._start(run)
        elif isinstance(event, psrpcore.PipelineInputEvent):
            run = self._runs.get(event.pipeline_id) if event.pipeline_id else None
            if run is not None:
                run.pipeline_input.append(from_wire(event.data))
        elif isinstance(event, psrpcore.EndOfPipelineInputEvent):
            run = self._runs.get(event.pipeline_id) if event.pipeline_id else None
            if run is not None:
                run.input_ended = True
                if run.metadata is not None:
                    self._start(run)
        elif isinstance(event, (psrpcore.SetMaxRunspacesEvent, psrpcore.SetMinRunspacesEvent,
                                psrpcore.ResetRunspaceStateEvent)):
            self._pool.runspace_availability_response(event.ci, True)
        elif isinstance(event, psrpcore.GetAvailableRunspacesEvent):
            self._pool.runspace_availability_response(event.ci, max(self._pool.max_runspaces - len(self._runs), 0))

    def _flush(self) -> None:
        while True:
            payload = self._pool.data_to_send(self.fragment_size)
            if payload is None:
                break
            queue = self._queues.get(payload.pipeline_id)
            if queue is not None:  # data for a terminated pipeline is dropped
                queue.append(payload.data)
        self._changed.notify_all()

    def _start(self, run: _Run) -> None:
        if run.started:
            return
        run.started = True
        run.server.start()
        thread = threading.Thread(target=self._work, args=(run,), name=f"psrp-pipeline-{run.command_id}", daemon=True)
        thread.start()

    def _stop_locked(self, run: _Run) -> None:
        state = run.server.state
        if state in (pst.PSInvocationState.Running, pst.PSInvocationState.Stopping):
            if state == pst.PSInvocationState.Running:
                run.server.begin_stop()
            run.server.stop()
            run.done = True
            self._flush()

    # --- the pipeline's thread ------------------------------------------------------------------

    def _work(self, run: _Run) -> None:
        sink = _Sink(self, run)
        failure: ShimError | None = None
        try:
            if isinstance(run.metadata, psrpcore.GetMetadata):
                for obj in command_metadata(self._cmdlets, run.metadata.name, int(run.metadata.command_type)):
                    sink.raw_output(obj)
            else:
                host = PipelineHost(self._make_session(self.owner), run.stop)
                run_pipeline(run.metadata.commands, None if run.no_input else run.pipeline_input, host, sink)
        except PipelineStopped:
            return
        except ShimError as error:
            failure = error
        except Exception:  # a cmdlet crashed: the client still gets an ErrorRecord and a Failed state
            _log.exception("PSRP pipeline %s of %s failed", run.command_id, self.owner)
            failure = ShimError(_INTERNAL_ERROR, error_id="InternalError")
        with self._lock:
            if run.server.state == pst.PSInvocationState.Running:
                if failure is None:
                    run.server.complete()
                else:
                    command = getattr(failure, "command", None)
                    run.server._change_state(pst.PSInvocationState.Failed, error_record(failure, command))
                run.done = True
                self._flush()

    def write(self, run: _Run, action: Callable[[psrpcore.ServerPipeline], None]) -> None:
        """Apply ``action`` to a running pipeline's state machine and queue what it produced (dropped once stopped)."""
        with self._lock:
            if run.server.state != pst.PSInvocationState.Running or run.stop.is_set:
                return
            action(run.server)
            self._flush()


class _Sink:
    """A pipeline's :class:`~shim.psrp.runner.PipelineSink`: each record becomes a PSRP message at once."""

    def __init__(self, shell: RunspaceShell, run: _Run) -> None:
        self._shell = shell
        self._run = run

    def raw_output(self, value: Any) -> None:
        self._shell.write(self._run, lambda p: p.write_output(value))

    def output(self, value: Any) -> None:
        wire = to_wire(value)
        self._shell.write(self._run, lambda p: p.write_output(wire))

    def error(self, error: ShimError, command: str | None) -> None:
        record = error_record(error, command)
        self._shell.write(self._run, lambda p: p.write_error(
            record.Exception, record.CategoryInfo, record.TargetObject, record.FullyQualifiedErrorId))

    def warning(self, text: str) -> None:
        self._shell.write(self._run, lambda p: p.write_warning(text))

    def information(self, text: str) -> None:
        self._shell.write(self._run, lambda p: p.write_information(text, "Write-Host"))


def _pipeline_id(command_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(command_id)
    except ValueError:
        raise ProtocolFailure(f"The CommandId {command_id!r} is not a GUID (PSRP pipelines are named by GUID).") from None
