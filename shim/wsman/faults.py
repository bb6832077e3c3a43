"""The WS-Management faults: each one becomes a SOAP 1.2 fault with HTTP 500.

A fault knows its SOAP code (Sender or Receiver), its subcode and its ``f:WSManFault`` code;
:func:`shim.wsman.envelope.build_fault` renders it the way pywinrm and pypsrp parse it.
"""

from __future__ import annotations

from shim.errors import ShimError
from shim.wsman import constants as c

__all__ = [
    "ActionNotSupported",
    "CommandNotFound",
    "EnvelopeTooLarge",
    "EnvelopeTooSmall",
    "InvalidBody",
    "InvalidHeader",
    "InvalidOptionValue",
    "InvalidXml",
    "OperationTimedOut",
    "ResourceNotSupported",
    "ShellNotFound",
    "ShellQuotaExceeded",
    "WSManFault",
]


class WSManFault(ShimError):
    """Root of the faults sent back to a WS-Management client."""

    soap_code: str = c.SOAP_SENDER
    subcode: tuple[str, str] = c.SUBCODE_INVALID_MESSAGE_INFORMATION_HEADER
    wsman_code: int = c.FaultCode.INVALID_HEADER
    error_id = "WSManFault"


class InvalidXml(WSManFault):
    """Raised when the request is not well-formed XML, is not a SOAP 1.2 envelope, or declares a DTD/entities."""

    subcode = c.SUBCODE_SCHEMA_VALIDATION_ERROR
    wsman_code = c.FaultCode.INVALID_XML


class EnvelopeTooLarge(WSManFault):
    """Raised when the request body is larger than :data:`~shim.wsman.constants.MAX_REQUEST_BYTES`."""

    subcode = c.SUBCODE_ENCODING_LIMIT
    wsman_code = c.FaultCode.ENVELOPE_TOO_LARGE


class InvalidHeader(WSManFault):
    """Raised when a SOAP header the service needs is missing or unreadable (Action, MessageID, timeouts)."""

    subcode = c.SUBCODE_INVALID_MESSAGE_INFORMATION_HEADER
    wsman_code = c.FaultCode.INVALID_HEADER


class InvalidBody(WSManFault):
    """Raised when the body lacks what the action needs (``rsp:Shell``, ``rsp:CommandLine``, a CommandId...)."""

    subcode = c.SUBCODE_SCHEMA_VALIDATION_ERROR
    wsman_code = c.FaultCode.INVALID_SOAP_BODY


class ActionNotSupported(WSManFault):
    """Raised for an ``a:Action`` the WinRS door does not implement."""

    subcode = c.SUBCODE_ACTION_NOT_SUPPORTED
    wsman_code = c.FaultCode.ACTION_NOT_SUPPORTED


class ResourceNotSupported(WSManFault):
    """Raised for a ``w:ResourceURI`` other than the WinRS cmd shell."""

    subcode = c.SUBCODE_DESTINATION_UNREACHABLE
    wsman_code = c.FaultCode.DESTINATION_UNREACHABLE


class InvalidOptionValue(WSManFault):
    """Raised when an option has a value the service cannot use (an unknown WINRS_CODEPAGE)."""

    subcode = c.SUBCODE_INVALID_OPTIONS
    wsman_code = c.FaultCode.INVALID_OPTION_VALUE


class ShellNotFound(WSManFault):
    """Raised when the ShellId names no shell of the requesting user (unknown, deleted, reaped or not theirs)."""

    subcode = c.SUBCODE_INVALID_SELECTORS
    wsman_code = c.FaultCode.INVALID_SELECTORS


class CommandNotFound(WSManFault):
    """Raised when a CommandId names no command of the shell (unknown or already terminated)."""

    subcode = c.SUBCODE_INVALID_SELECTORS
    wsman_code = c.FaultCode.INVALID_SELECTORS


class ShellQuotaExceeded(WSManFault):
    """Raised by Create when the user already holds the maximum number of shells."""

    subcode = c.SUBCODE_QUOTA_LIMIT
    wsman_code = c.FaultCode.QUOTA_MAX_SHELLS


class EnvelopeTooSmall(WSManFault):
    """Raised when the client's MaxEnvelopeSize cannot hold a Receive response with any output."""

    subcode = c.SUBCODE_ENCODING_LIMIT
    wsman_code = c.FaultCode.MIN_ENVELOPE_SIZE


class OperationTimedOut(WSManFault):
    """Raised when a Receive found no output within OperationTimeout; clients poll again."""

    soap_code = c.SOAP_RECEIVER
    subcode = c.SUBCODE_TIMED_OUT
    wsman_code = c.FaultCode.OPERATION_TIMED_OUT
