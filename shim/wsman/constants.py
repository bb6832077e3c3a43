"""Every namespace, action URI, fault code and tunable of the WS-Management door, in one place.

Names follow MS-WSMV and ``winerror.h`` (``ERROR_WSMAN_*``); tunables carry their unit in the name.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

# --- Namespaces -----------------------------------------------------------------------------

NS_SOAP: Final = "http://www.w3.org/2003/05/soap-envelope"
NS_ADDRESSING: Final = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
NS_WSMAN: Final = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
NS_WSMAN_MS: Final = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
NS_TRANSFER: Final = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
NS_SHELL: Final = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
NS_WSMAN_FAULT: Final = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
NS_XML: Final = "http://www.w3.org/XML/1998/namespace"
NS_CLIXML: Final = "http://schemas.microsoft.com/powershell/2004/04"

#: Prefixes used in every response envelope (the ones Windows uses).
RESPONSE_NSMAP: Final[dict[str, str]] = {
    "s": NS_SOAP,
    "a": NS_ADDRESSING,
    "x": NS_TRANSFER,
    "w": NS_WSMAN,
    "rsp": NS_SHELL,
    "p": NS_WSMAN_MS,
}

# --- Actions --------------------------------------------------------------------------------

ACTION_CREATE: Final = f"{NS_TRANSFER}/Create"
ACTION_CREATE_RESPONSE: Final = f"{NS_TRANSFER}/CreateResponse"
ACTION_DELETE: Final = f"{NS_TRANSFER}/Delete"
ACTION_DELETE_RESPONSE: Final = f"{NS_TRANSFER}/DeleteResponse"
ACTION_COMMAND: Final = f"{NS_SHELL}/Command"
ACTION_COMMAND_RESPONSE: Final = f"{NS_SHELL}/CommandResponse"
ACTION_RECEIVE: Final = f"{NS_SHELL}/Receive"
ACTION_RECEIVE_RESPONSE: Final = f"{NS_SHELL}/ReceiveResponse"
ACTION_SIGNAL: Final = f"{NS_SHELL}/Signal"
ACTION_SIGNAL_RESPONSE: Final = f"{NS_SHELL}/SignalResponse"
ACTION_SEND: Final = f"{NS_SHELL}/Send"
ACTION_SEND_RESPONSE: Final = f"{NS_SHELL}/SendResponse"
ACTION_FAULT: Final = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"

ADDRESS_ANONYMOUS: Final = f"{NS_ADDRESSING}/role/anonymous"

# --- WinRS ----------------------------------------------------------------------------------

RESOURCE_URI_CMD: Final = f"{NS_SHELL}/cmd"
SELECTOR_SHELL_ID: Final = "ShellId"
COMMAND_STATE_RUNNING: Final = f"{NS_SHELL}/CommandState/Running"
COMMAND_STATE_DONE: Final = f"{NS_SHELL}/CommandState/Done"
SIGNAL_TERMINATE: Final = f"{NS_SHELL}/signal/terminate"
SIGNAL_CTRL_C: Final = f"{NS_SHELL}/signal/ctrl_c"
SIGNAL_CTRL_BREAK: Final = f"{NS_SHELL}/signal/ctrl_break"
STREAM_STDOUT: Final = "stdout"
STREAM_STDERR: Final = "stderr"
OPTION_CODEPAGE: Final = "WINRS_CODEPAGE"
CODEPAGE_OEM_US: Final = 437
CODEPAGE_UTF8: Final = 65001
#: Exit code Windows reports for a process stopped by Ctrl+C (STATUS_CONTROL_C_EXIT, as int32).
EXIT_CODE_CTRL_C: Final = -1073741510
#: Exit code of a command whose runner crashed instead of returning an outcome.
EXIT_CODE_RUNNER_FAILED: Final = 1

CONTENT_TYPE: Final = "application/soap+xml;charset=UTF-8"

#: URL rules served (POST only; query strings are ignored). pywinrm keeps only ``/wsman`` and maps
#: any other path to ``/``; ``/powershell`` is where PowerShell-remoting clients post.
ROUTES: Final = ("/wsman", "/wsman/", "/powershell", "/powershell/", "/")

# --- Tunables -------------------------------------------------------------------------------

DEFAULT_SHELL_IDLE_TIMEOUT_SECONDS: Final = 900.0
"""A shell with no request for this long is deleted (Windows uses 2 h; shells here hold output in memory)."""

DEFAULT_MAX_SHELLS_PER_USER: Final = 30
"""Open shells one user may hold at once (Windows' ``MaxShellsPerUser`` default)."""

DEFAULT_OPERATION_TIMEOUT_SECONDS: Final = 20.0
"""How long a Receive may wait when the request carries no ``w:OperationTimeout`` (pywinrm's default)."""

MAX_RECEIVE_WAIT_SECONDS: Final = 25.0
"""Upper bound for holding a Receive, below pywinrm's 30 s read timeout, whatever the client asks for."""

RECEIVE_REPLY_MARGIN_SECONDS: Final = 0.25
"""A timed-out Receive is answered this much before the client's OperationTimeout, to arrive in time."""

DEFAULT_MAX_ENVELOPE_SIZE_BYTES: Final = 153600
"""Response size limit when the request carries no ``w:MaxEnvelopeSize`` (pywinrm's value)."""

MAX_REQUEST_BYTES: Final = 512000
"""Largest request body accepted (Windows' default ``MaxEnvelopeSizekb`` of 500 KiB)."""


# --- Faults ---------------------------------------------------------------------------------


class FaultCode(IntEnum):
    """``f:WSManFault/@Code`` values, as Windows sends them (``ERROR_WSMAN_*`` in winerror.h)."""

    #: ERROR_WSMAN_INVALID_MESSAGE_INFORMATION_HEADER: a SOAP header is missing or invalid.
    INVALID_HEADER = 2150858767
    #: ERROR_WSMAN_DESTINATION_UNREACHABLE: the resource URI is not served here.
    DESTINATION_UNREACHABLE = 2150858770
    #: ERROR_WSMAN_ACTION_NOT_SUPPORTED: the action is not implemented for the resource.
    ACTION_NOT_SUPPORTED = 2150858771
    #: ERROR_WSMAN_INVALID_SOAP_BODY: the body does not have the elements the action needs.
    INVALID_SOAP_BODY = 2150858791
    #: ERROR_WSMAN_OPERATION_TIMEDOUT: a Receive found nothing within OperationTimeout (pywinrm retries).
    OPERATION_TIMED_OUT = 2150858793
    #: ERROR_WSMAN_INVALID_XML: the request is not well-formed, or uses a DTD or entities.
    INVALID_XML = 2150858819
    #: ERROR_WSMAN_MAX_ENVELOPE_SIZE_EXCEEDED: the request body is larger than accepted.
    ENVELOPE_TOO_LARGE = 2150858824
    #: ERROR_WSMAN_OPTIONS_INVALID_VALUE: an option (e.g. WINRS_CODEPAGE) has an unusable value.
    INVALID_OPTION_VALUE = 2150858835
    #: The shell or command named by the selectors does not exist (what Windows sends for WinRS).
    INVALID_SELECTORS = 2150858843
    #: ERROR_WSMAN_MIN_ENVELOPE_SIZE: the client's MaxEnvelopeSize leaves no room for output.
    MIN_ENVELOPE_SIZE = 2150858878
    #: ERROR_WSMAN_QUOTA_MAX_SHELLS: the user already holds the maximum number of shells.
    QUOTA_MAX_SHELLS = 2150859173


#: SOAP 1.2 fault codes (``s:Code/s:Value``).
SOAP_SENDER: Final = "Sender"
SOAP_RECEIVER: Final = "Receiver"

#: Fault subcodes as (namespace, local name); rendered with the response's prefixes.
SUBCODE_INVALID_MESSAGE_INFORMATION_HEADER: Final = (NS_ADDRESSING, "InvalidMessageInformationHeader")
SUBCODE_DESTINATION_UNREACHABLE: Final = (NS_ADDRESSING, "DestinationUnreachable")
SUBCODE_ACTION_NOT_SUPPORTED: Final = (NS_ADDRESSING, "ActionNotSupported")
SUBCODE_SCHEMA_VALIDATION_ERROR: Final = (NS_WSMAN, "SchemaValidationError")
SUBCODE_TIMED_OUT: Final = (NS_WSMAN, "TimedOut")
SUBCODE_INVALID_SELECTORS: Final = (NS_WSMAN, "InvalidSelectors")
SUBCODE_INVALID_OPTIONS: Final = (NS_WSMAN, "InvalidOptions")
SUBCODE_ENCODING_LIMIT: Final = (NS_WSMAN, "EncodingLimit")
SUBCODE_QUOTA_LIMIT: Final = (NS_WSMAN, "QuotaLimit")
