"""The PowerShell remoting door: PSRP shells on the WS-Management endpoint (resource ``.../powershell/<configuration>``).

Create opens a runspace pool from the creationXml; Command starts a pipeline (CREATE_PIPELINE or
GET_COMMAND_METADATA) with the client's CommandId; Send carries further fragments, input and
host responses; Receive long-polls the pool or one pipeline; Signal stops (``ctrl_c``, either
spelling) or terminates a pipeline; Delete closes the pool. The PSRP work is :mod:`shim.psrp`;
this module maps WS-Management to it and its refusals to faults.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable

from shim.psrp import PSRPError, ProtocolFailure, RunspaceRegistry, RunspaceShell, SessionFactory, ShellUnknown
from shim.psrp import constants as k
from shim.psrp.sessions import SessionLimitReached
from shim.psrp.xpress import XpressError, frame, unframe
from shim.wsman import constants as c
from shim.wsman.envelope import (
    CreateReply,
    WSManRequest,
    build_command_response,
    build_create_response,
    build_delete_response,
    build_send_response,
    build_signal_response,
    build_stream_receive_response,
    receive_payload_budget,
)
from shim.wsman.faults import (
    CommandNotFound,
    EnvelopeTooSmall,
    InvalidBody,
    OperationTimedOut,
    ShellNotFound,
    ShellQuotaExceeded,
    WSManFault,
)

__all__ = ["PowerShellEndpoint", "configuration_of"]

#: Room kept in a Receive budget for each extra ``rsp:Stream`` element's tags.
_STREAM_OVERHEAD_BYTES = 96
#: An xpress block header (one block per payload: fragments are smaller than a block).
_XPRESS_HEADER_BYTES = 4
_NS_PS = f"{{{k.NS_POWERSHELL}}}"
_RSP = f"{{{c.NS_SHELL}}}"
#: Signal code endings that stop a pipeline: pypsrp 0.9 sends the bare ``powershell/signal/ctrl_c``, Windows the
#: full URI, MS-PSRP spells it ``crtl_c``; WinRS-style ``ctrl_c``/``ctrl_break`` are taken too (any case).
_SIGNALS_STOP = ("/signal/ctrl_c", "/signal/crtl_c", "/signal/ctrl_break")
_SIGNAL_TERMINATE = "/signal/terminate"


def configuration_of(resource_uri: str | None) -> str | None:
    """The PowerShell configuration a resource URI names (``Microsoft.Exchange``), or None when it is not one served."""
    if not resource_uri:
        return None
    for name, uri in zip(k.CONFIGURATIONS, k.RESOURCE_URIS):
        if resource_uri.lower() == uri.lower():
            return name
    return None


class PowerShellEndpoint:
    """PSRP over WS-Management for the configurations in :data:`shim.psrp.constants.CONFIGURATIONS`.

    Args:
        make_session: the registry session for an administrator (one per pipeline).
        registry: the open runspace pools.
    """

    def __init__(self, make_session: SessionFactory, registry: RunspaceRegistry) -> None:
        self._make_session = make_session
        self.registry = registry
        self.handlers: dict[str, Callable[[WSManRequest, str, str, str], bytes]] = {
            c.ACTION_CREATE: self._create,
            c.ACTION_COMMAND: self._command,
            c.ACTION_RECEIVE: self._receive,
            c.ACTION_SEND: self._send,
            c.ACTION_SIGNAL: self._signal,
            c.ACTION_DELETE: self._delete,
        }

    def handle(self, request: WSManRequest, user: str, client_ip: str, address: str) -> bytes:
        """Answer one PSRP request (the action is one of :attr:`handlers`).

        Raises:
            WSManFault: every refusal, in the shape WinRM clients parse.
        """
        try:
            return self.handlers[request.action](request, user, client_ip, address)
        except WSManFault:
            raise
        except ShellUnknown as exc:
            raise ShellNotFound(exc.message) from None
        except SessionLimitReached as exc:
            raise ShellQuotaExceeded(exc.message) from None
        except XpressError as exc:
            raise InvalidBody("The WS-Management service cannot process the request because the compressed data could "
                              f"not be decoded ({exc.message}). Connect with -SessionOption "
                              "(New-PSSessionOption -NoCompression).") from None
        except ProtocolFailure as exc:
            raise InvalidBody(f"The WS-Management service cannot process the request: {exc.message}") from None
        except PSRPError as exc:
            raise CommandNotFound(exc.message) from None

    # --- handlers ---------------------------------------------------------------------------

    def _create(self, request: WSManRequest, user: str, client_ip: str, address: str) -> bytes:
        configuration = configuration_of(request.resource_uri) or k.CONFIGURATION_EXCHANGE
        shell_element = request.body_child("Shell")
        creation = shell_element.find(f"{_NS_PS}creationXml")
        if creation is None or not (creation.text or "").strip():
            raise InvalidBody("The WS-Management service cannot process the request because a PowerShell shell "
                              "needs creationXml (the PSRP SESSION_CAPABILITY and INIT_RUNSPACEPOOL messages).")
        data = _base64(creation.text or "", "creationXml")
        shell_id = _client_shell_id(shell_element.get("ShellId"))
        compression = _compression(request)
        max_envelope = request.max_envelope_size or c.DEFAULT_MAX_ENVELOPE_SIZE_BYTES
        budget = receive_payload_budget(max_envelope, request.message_id, str(uuid.UUID(int=0)).upper())
        shell = RunspaceShell(shell_id, user, configuration, self._make_session,
                              fragment_size=budget - _overhead(compression), compression=compression)
        shell.open(data)  # creationXml is SOAP text: never compressed
        self.registry.add(shell)
        input_streams = (shell_element.findtext(f"{_RSP}InputStreams") or "stdin pr").strip()
        output_streams = (shell_element.findtext(f"{_RSP}OutputStreams") or "stdout").strip()
        reply = CreateReply(
            shell_id=shell_id, address=address, owner=user, client_ip=client_ip,
            idle_timeout_seconds=self.registry.idle_timeout, input_streams=input_streams,
            output_streams=output_streams, resource_uri=k.RESOURCE_URI_PREFIX + configuration,
            extra=(("State", "Connected"), ("CompressionMode", "XpressCompression" if compression else "NoCompression"),
                   ("ProfileLoaded", "Yes"), ("Encoding", "UTF8"), ("BufferMode", "Block")),
        )
        return build_create_response(request.message_id, reply)

    def _command(self, request: WSManRequest, user: str, client_ip: str, address: str) -> bytes:
        command_line = request.body_child("CommandLine")
        command_id = command_line.get("CommandId")
        if not command_id:
            raise InvalidBody("The WS-Management service cannot process the request because a PowerShell Command "
                              "needs the CommandId attribute (the pipeline's GUID).")
        arguments = "".join(a.text or "" for a in command_line.iterfind(f"{_RSP}Arguments"))
        data = _base64(arguments, "rsp:Arguments")
        with self.registry.use(_shell_id(request), user) as shell:
            shell.command(command_id, data)
        return build_command_response(request.message_id, command_id)

    def _receive(self, request: WSManRequest, user: str, client_ip: str, address: str) -> bytes:
        desired = request.body_child("Receive").find(f"{_RSP}DesiredStream")
        command_id = desired.get("CommandId") if desired is not None else None
        max_envelope = request.max_envelope_size or c.DEFAULT_MAX_ENVELOPE_SIZE_BYTES
        budget = receive_payload_budget(max_envelope, request.message_id, command_id or "")
        timeout = min(request.operation_timeout or c.DEFAULT_OPERATION_TIMEOUT_SECONDS, c.MAX_RECEIVE_WAIT_SECONDS)
        with self.registry.use(_shell_id(request), user) as shell:
            if budget <= k.MIN_FRAGMENT_BYTES:
                raise EnvelopeTooSmall(f"The WS-Management service cannot process the request because the envelope "
                                       f"size in the request ({max_envelope}) is too small.")
            chunk = shell.receive(command_id, budget, timeout - c.RECEIVE_REPLY_MARGIN_SECONDS,
                                  overhead=_overhead(shell.compression))
            compression = shell.compression
        if chunk is None:
            raise OperationTimedOut(
                "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.")
        payloads = [frame(p) for p in chunk.payloads] if compression else chunk.payloads
        state = None
        if command_id is not None:
            state = c.COMMAND_STATE_DONE if chunk.done else c.COMMAND_STATE_RUNNING
        return build_stream_receive_response(request.message_id, command_id, payloads, state)

    def _send(self, request: WSManRequest, user: str, client_ip: str, address: str) -> bytes:
        streams = list(request.body_child("Send").iterfind(f"{_RSP}Stream"))
        if not streams:
            raise InvalidBody("The WS-Management service cannot process the request because rsp:Send has no rsp:Stream.")
        with self.registry.use(_shell_id(request), user) as shell:
            for stream in streams:
                data = _base64(stream.text or "", "rsp:Stream")
                if shell.compression:
                    data = unframe(data)
                shell.send(stream.get("CommandId"), stream.get("Name") or "stdin", data)
        return build_send_response(request.message_id)

    def _signal(self, request: WSManRequest, user: str, client_ip: str, address: str) -> bytes:
        signal = request.body_child("Signal")
        command_id = signal.get("CommandId")
        code = (signal.findtext(f"{_RSP}Code") or "").strip().lower()
        with self.registry.use(_shell_id(request), user) as shell:
            if not command_id:
                raise InvalidBody("The WS-Management service cannot process the request because the CommandId "
                                  "attribute is missing.")
            if code.endswith(_SIGNAL_TERMINATE):
                shell.terminate(command_id)
            elif code.endswith(_SIGNALS_STOP):
                shell.stop(command_id)
            else:
                raise InvalidBody(f"The WS-Management service cannot process the request because the signal code "
                                  f"{code!r} is not supported.")
        return build_signal_response(request.message_id)

    def _delete(self, request: WSManRequest, user: str, client_ip: str, address: str) -> bytes:
        self.registry.delete(_shell_id(request), user)
        return build_delete_response(request.message_id)


def _overhead(compression: bool) -> int:
    """Bytes each payload adds to a ReceiveResponse besides its own: base64 growth is in the budget already;
    this is the ``rsp:Stream`` element's tags (and the xpress block header)."""
    return _STREAM_OVERHEAD_BYTES + (_XPRESS_HEADER_BYTES if compression else 0)


def _compression(request: WSManRequest) -> bool:
    """True when the client asked for xpress (``rsp:CompressionType`` in the header or the shell)."""
    places = [request.header, request.body]
    for place in places:
        if place is None:
            continue
        for element in place.iter(f"{_RSP}CompressionType"):
            value = (element.text or "").strip().lower()
            if value and value != k.COMPRESSION_XPRESS:
                raise InvalidBody(f"The WS-Management service cannot process the request because the compression "
                                  f"type {value!r} is not supported (only xpress).")
            if value == k.COMPRESSION_XPRESS:
                return True
    return False


def _client_shell_id(value: str | None) -> str:
    if value:
        try:
            return str(uuid.UUID(value)).upper()
        except ValueError:
            raise InvalidBody(f"The WS-Management service cannot process the request because the ShellId {value!r} "
                              "is not a GUID.") from None
    return str(uuid.uuid4()).upper()


def _base64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidBody(f"The WS-Management service cannot process the request because {what} is not base64.") from None


def _shell_id(request: WSManRequest) -> str:
    shell_id = request.selectors.get(c.SELECTOR_SHELL_ID)
    if not shell_id:
        raise ShellNotFound("The WS-Management service cannot process the request because the ShellId selector is missing.")
    return shell_id

