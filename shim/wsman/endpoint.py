"""The WS-Management door's request handling: one handler per action, chosen from a table.

WinRS shells (``windows/shell/cmd``) are handled here; PSRP shells (``powershell/<configuration>``)
go to :class:`~shim.wsman.powershell.PowerShellEndpoint` when the door serves them.

:meth:`WinRSEndpoint.handle` takes a request body and the authenticated user and returns the
HTTP status and response body; every refusal is a :class:`~shim.wsman.faults.WSManFault`
rendered as a SOAP fault with HTTP 500.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree

from shim.errors import ShimError
from shim.host import ScriptOutcome
from shim.wsman import constants as c
from shim.wsman.envelope import (
    CreateReply,
    ReceiveReply,
    WSManRequest,
    build_command_response,
    build_create_response,
    build_delete_response,
    build_fault,
    build_receive_response,
    build_send_response,
    build_signal_response,
    parse_request,
    receive_payload_budget,
)
from shim.wsman.faults import (
    ActionNotSupported,
    EnvelopeTooLarge,
    EnvelopeTooSmall,
    InvalidBody,
    InvalidOptionValue,
    OperationTimedOut,
    ResourceNotSupported,
    ShellNotFound,
    WSManFault,
)
from shim.wsman.powershell import PowerShellEndpoint, configuration_of
from shim.wsman.shells import CommandResult, Shell, ShellRegistry
from shim.wsman.winrs import CommandLineError, codec_for_codepage, encode_errors, encode_outcome, script_from_command_line

__all__ = ["RequestContext", "ScriptRunner", "WinRSEndpoint"]

_log = logging.getLogger(__name__)

_RUNNER_FAILED_MESSAGE = "Mailshift could not run the command because of an internal error; the service log has the details."

#: ``run_script(script_text, user) -> ScriptOutcome``: the interpreter behind the door.
ScriptRunner = Callable[[str, str], ScriptOutcome]


@dataclass(frozen=True)
class RequestContext:
    """Who sent a request and where to."""

    user: str
    client_ip: str
    #: The endpoint URL the client posted to (reported as the shell's address).
    address: str


_Handler = Callable[[WSManRequest, RequestContext], bytes]


class WinRSEndpoint:
    """WinRS (``windows/shell/cmd``) over WS-Management: Create, Command, Receive, Signal, Send, Delete.

    Args:
        run_script: runs PowerShell text for a user.
        registry: the shells and their commands.
        machine: the name reported in faults (defaults to this host's name).
    """

    def __init__(self, run_script: ScriptRunner, registry: ShellRegistry, *, machine: str | None = None,
                 powershell: PowerShellEndpoint | None = None) -> None:
        self._run_script = run_script
        self.registry = registry
        #: The PSRP shells (resource URIs ``.../powershell/Microsoft.Exchange`` and ``Microsoft.PowerShell``), if served.
        self.powershell = powershell
        self._machine = machine or socket.gethostname()
        self._handlers: dict[str, _Handler] = {
            c.ACTION_CREATE: self._create,
            c.ACTION_COMMAND: self._command,
            c.ACTION_RECEIVE: self._receive,
            c.ACTION_SIGNAL: self._signal,
            c.ACTION_SEND: self._send,
            c.ACTION_DELETE: self._delete,
        }

    def handle(self, data: bytes, context: RequestContext) -> tuple[int, bytes]:
        """Answer one request.

        Args:
            data: the HTTP request body.
            context: the authenticated user and the connection's details.

        Returns:
            ``(200, response)``, ``(500, SOAP fault)``, or ``(413, SOAP fault)`` for a body over the limit.
        """
        if len(data) > c.MAX_REQUEST_BYTES:
            return self.refuse_oversized_request()
        request: WSManRequest | None = None
        try:
            request = parse_request(data)
            handler = self._handlers.get(request.action)
            if handler is None:
                raise ActionNotSupported(
                    f"The WS-Management service cannot process the request because the action {request.action} is not supported."
                )
            if self.powershell is not None and configuration_of(request.resource_uri) is not None:
                return 200, self.powershell.handle(request, context.user, context.client_ip, context.address)
            if request.resource_uri != c.RESOURCE_URI_CMD:
                raise ResourceNotSupported(
                    "The WS-Management service cannot process the request because the resource URI "
                    f"{request.resource_uri or '(none)'} is not supported. Only {c.RESOURCE_URI_CMD} is served."
                )
            return 200, handler(request, context)
        except WSManFault as fault:
            relates_to = request.message_id if request is not None else None
            return 500, build_fault(fault, relates_to=relates_to, machine=self._machine)

    def refuse_oversized_request(self) -> tuple[int, bytes]:
        """``(413, fault)`` for a request body larger than :data:`~shim.wsman.constants.MAX_REQUEST_BYTES` (not read).

        The status says it to any HTTP client; the body is WinRM's envelope-too-large fault.
        """
        return 413, build_fault(_oversized(), relates_to=None, machine=self._machine)

    # --- handlers -----------------------------------------------------------------------

    def _create(self, request: WSManRequest, context: RequestContext) -> bytes:
        shell_element = request.body_child("Shell")
        codepage_text = request.options.get(c.OPTION_CODEPAGE, str(c.CODEPAGE_OEM_US))
        try:
            codepage = int(codepage_text)
        except ValueError:
            raise InvalidOptionValue(
                f"The WS-Management service cannot process the request because {c.OPTION_CODEPAGE} {codepage_text!r} is not a number."
            ) from None
        codec_for_codepage(codepage)
        input_streams = shell_element.findtext(f"{{{c.NS_SHELL}}}InputStreams", default="stdin").strip() or "stdin"
        output_streams = shell_element.findtext(f"{{{c.NS_SHELL}}}OutputStreams", default="stdout stderr").strip() or "stdout stderr"
        shell = self.registry.create(context.user, codepage=codepage, input_streams=input_streams, output_streams=output_streams)
        reply = CreateReply(
            shell_id=shell.shell_id,
            address=context.address,
            owner=context.user,
            client_ip=context.client_ip,
            idle_timeout_seconds=self.registry.idle_timeout,
            input_streams=input_streams,
            output_streams=output_streams,
        )
        return build_create_response(request.message_id, reply)

    def _command(self, request: WSManRequest, context: RequestContext) -> bytes:
        command_line = request.body_child("CommandLine")
        command = command_line.findtext(f"{{{c.NS_SHELL}}}Command", default="")
        arguments = " ".join(a.text or "" for a in command_line.iterfind(f"{{{c.NS_SHELL}}}Arguments")) or None
        with self.registry.use(_shell_id(request), context.user) as shell:
            run = shell.start_command(self._job(shell, command, arguments, context.user))
            return build_command_response(request.message_id, run.command_id)

    def _job(self, shell: Shell, command: str, arguments: str | None, user: str) -> Callable[[], CommandResult]:
        codepage = shell.codepage

        def job() -> CommandResult:
            try:
                script = script_from_command_line(command, arguments)
            except CommandLineError as exc:
                return CommandResult(b"", encode_errors([exc.message]), 1)
            try:
                outcome = self._run_script(script, user)
            except ShimError as exc:
                outcome = ScriptOutcome("", [exc.message], 1)
            except Exception:  # the interpreter failed unexpectedly: the client still gets an error and an exit code
                _log.exception("WinRS command for %s failed: %r", user, script[:200])
                outcome = ScriptOutcome("", [_RUNNER_FAILED_MESSAGE], c.EXIT_CODE_RUNNER_FAILED)
            stdout, stderr, exit_code = encode_outcome(outcome, codepage)
            return CommandResult(stdout, stderr, exit_code)

        return job

    def _receive(self, request: WSManRequest, context: RequestContext) -> bytes:
        command_id = _command_id(request.body_child("Receive").find(f"{{{c.NS_SHELL}}}DesiredStream"))
        max_envelope = request.max_envelope_size or c.DEFAULT_MAX_ENVELOPE_SIZE_BYTES
        budget = receive_payload_budget(max_envelope, request.message_id, command_id)
        if budget <= 0:
            raise EnvelopeTooSmall(
                f"The WS-Management service cannot process the request because the envelope size in the request ({max_envelope}) is too small."
            )
        timeout = min(request.operation_timeout or c.DEFAULT_OPERATION_TIMEOUT_SECONDS, c.MAX_RECEIVE_WAIT_SECONDS)
        with self.registry.use(_shell_id(request), context.user) as shell:
            run = shell.command(command_id)
            chunk = run.take_output(budget, timeout - c.RECEIVE_REPLY_MARGIN_SECONDS)
        if chunk is None:
            raise OperationTimedOut(
                "The WS-Management service cannot complete the operation within the time specified in OperationTimeout."
            )
        reply = ReceiveReply(command_id, chunk.stdout, chunk.stderr, chunk.done, chunk.exit_code)
        return build_receive_response(request.message_id, reply)

    def _signal(self, request: WSManRequest, context: RequestContext) -> bytes:
        signal = request.body_child("Signal")
        command_id = _command_id(signal)
        code = (signal.findtext(f"{{{c.NS_SHELL}}}Code") or "").strip()
        with self.registry.use(_shell_id(request), context.user) as shell:
            if code == c.SIGNAL_TERMINATE:
                shell.remove_command(command_id)
            elif code in (c.SIGNAL_CTRL_C, c.SIGNAL_CTRL_BREAK):
                shell.command(command_id).interrupt(c.EXIT_CODE_CTRL_C)
            else:
                raise InvalidBody(f"The WS-Management service cannot process the request because the signal code {code!r} is not supported.")
        return build_signal_response(request.message_id)

    def _send(self, request: WSManRequest, context: RequestContext) -> bytes:
        streams = list(request.body_child("Send").iterfind(f"{{{c.NS_SHELL}}}Stream"))
        if not streams:
            raise InvalidBody("The WS-Management service cannot process the request because rsp:Send has no rsp:Stream.")
        with self.registry.use(_shell_id(request), context.user) as shell:
            for stream in streams:
                # Commands read no input yet: check that the command exists and drop the bytes.
                shell.command(_command_id(stream))
        return build_send_response(request.message_id)

    def _delete(self, request: WSManRequest, context: RequestContext) -> bytes:
        self.registry.delete(_shell_id(request), context.user)
        return build_delete_response(request.message_id)


def _oversized() -> EnvelopeTooLarge:
    return EnvelopeTooLarge(f"The WS-Management service cannot process the request because it is larger than {c.MAX_REQUEST_BYTES} bytes.")


def _shell_id(request: WSManRequest) -> str:
    shell_id = request.selectors.get(c.SELECTOR_SHELL_ID)
    if not shell_id:
        raise ShellNotFound("The WS-Management service cannot process the request because the ShellId selector is missing.")
    return shell_id


def _command_id(element: etree._Element | None) -> str:
    command_id = element.get("CommandId") if element is not None else None
    if not command_id:
        raise InvalidBody("The WS-Management service cannot process the request because the CommandId attribute is missing.")
    return str(command_id)
