"""Parsing SOAP 1.2 WS-Management requests and building the responses and faults.

No IO and no state: bytes in, :class:`WSManRequest` out; values in, bytes out. The parser is
locked down (no DTD, no entities, no network, no huge trees) because request bodies come from
the network before anything else looks at them.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from lxml import etree

from shim.wsman import constants as c
from shim.wsman.faults import InvalidBody, InvalidHeader, InvalidXml, WSManFault

__all__ = [
    "CreateReply",
    "ReceiveReply",
    "WSManRequest",
    "build_command_response",
    "build_create_response",
    "build_delete_response",
    "build_fault",
    "build_receive_response",
    "build_send_response",
    "build_signal_response",
    "build_stream_receive_response",
    "format_duration",
    "parse_duration",
    "parse_request",
    "receive_payload_budget",
]

_S = f"{{{c.NS_SOAP}}}"
_A = f"{{{c.NS_ADDRESSING}}}"
_W = f"{{{c.NS_WSMAN}}}"
_X = f"{{{c.NS_TRANSFER}}}"
_RSP = f"{{{c.NS_SHELL}}}"
_F = f"{{{c.NS_WSMAN_FAULT}}}"
_XML_LANG = f"{{{c.NS_XML}}}lang"

_DURATION = re.compile(
    r"^P(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def _secure_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


@dataclass(frozen=True)
class WSManRequest:
    """The parts of a request envelope the service acts on (``a:To``, locales, unknown headers ignored)."""

    action: str
    message_id: str
    resource_uri: str | None
    #: ``w:OperationTimeout`` in seconds, None when absent.
    operation_timeout: float | None
    #: ``w:MaxEnvelopeSize`` in bytes, None when absent.
    max_envelope_size: int | None
    selectors: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)
    #: The ``s:Body`` element; action handlers read their own payload from it.
    body: etree._Element | None = None
    #: The ``s:Header`` element, for headers only one kind of shell reads (``rsp:CompressionType``).
    header: etree._Element | None = None

    def body_child(self, local_name: str) -> etree._Element:
        """The body's ``rsp:<local_name>`` element.

        Raises:
            InvalidBody: when it is missing.
        """
        found = None if self.body is None else self.body.find(f"{_RSP}{local_name}")
        if found is None:
            raise InvalidBody(f"The WS-Management service cannot process the request because the body has no rsp:{local_name}.")
        return found


def parse_duration(text: str) -> float:
    """Seconds in an xs:duration without years or months (``PT20S``, ``PT1M30.5S``, ``P1DT2H``).

    Raises:
        ValueError: when the text is not such a duration.
    """
    match = _DURATION.match(text.strip())
    if match is None or text.strip() in ("P", "PT"):
        raise ValueError(f"not an xs:duration in days, hours, minutes and seconds: {text!r}")
    parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    return parts["days"] * 86400 + parts["hours"] * 3600 + parts["minutes"] * 60 + parts["seconds"]


def format_duration(seconds: float) -> str:
    """An xs:duration for a number of seconds, as Windows writes them (``PT900.000S``)."""
    return f"PT{seconds:.3f}S"


def _text(element: etree._Element | None) -> str | None:
    if element is None:
        return None
    return (element.text or "").strip()


def parse_request(data: bytes) -> WSManRequest:
    """Parse a SOAP 1.2 WS-Management request envelope.

    Args:
        data: the raw HTTP request body.

    Returns:
        The request's action, addressing and WS-Management headers, and its body element.

    Raises:
        InvalidXml: when the body is not well-formed, declares a DTD or entities, or is not a SOAP 1.2 envelope.
        InvalidHeader: when Action or MessageID is missing, or a timeout or size header is unreadable.
    """
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise InvalidXml("The WS-Management service cannot process the request because the XML declares a DTD or entities.")
    try:
        root = etree.fromstring(data, _secure_parser())
    except etree.XMLSyntaxError as exc:
        raise InvalidXml(f"The WS-Management service cannot process the request because the XML is invalid: {exc}") from None
    tree = root.getroottree()
    # lxml-stubs lack DocInfo.doctype ("" when the document has no DOCTYPE).
    doctype: str = getattr(tree.docinfo, "doctype", "")
    if doctype or tree.docinfo.internalDTD is not None:
        raise InvalidXml("The WS-Management service cannot process the request because the XML declares a DTD or entities.")
    if any(isinstance(node, etree._Entity) for node in root.iter()):
        raise InvalidXml("The WS-Management service cannot process the request because the XML uses entities.")
    if root.tag != f"{_S}Envelope":
        raise InvalidXml("The WS-Management service cannot process the request because it is not a SOAP 1.2 envelope.")
    header = root.find(f"{_S}Header")
    if header is None:
        raise InvalidHeader("The WS-Management service cannot process the request because the SOAP header is missing.")

    action = _text(header.find(f"{_A}Action"))
    message_id = _text(header.find(f"{_A}MessageID"))
    if not action:
        raise InvalidHeader("The WS-Management service cannot process the request because the a:Action header is missing.")
    if not message_id:
        raise InvalidHeader("The WS-Management service cannot process the request because the a:MessageID header is missing.")

    timeout_text = _text(header.find(f"{_W}OperationTimeout"))
    operation_timeout: float | None = None
    if timeout_text:
        try:
            operation_timeout = parse_duration(timeout_text)
        except ValueError:
            raise InvalidHeader(
                f"The WS-Management service cannot process the request because w:OperationTimeout {timeout_text!r} is not a duration."
            ) from None

    size_text = _text(header.find(f"{_W}MaxEnvelopeSize"))
    max_envelope_size: int | None = None
    if size_text:
        try:
            max_envelope_size = int(size_text)
        except ValueError:
            raise InvalidHeader(
                f"The WS-Management service cannot process the request because w:MaxEnvelopeSize {size_text!r} is not a number."
            ) from None

    selectors = {
        str(sel.get("Name")): (sel.text or "").strip() for sel in header.iterfind(f"{_W}SelectorSet/{_W}Selector") if sel.get("Name")
    }
    options = {str(opt.get("Name")): (opt.text or "").strip() for opt in header.iterfind(f"{_W}OptionSet/{_W}Option") if opt.get("Name")}
    return WSManRequest(
        action=action,
        message_id=message_id,
        resource_uri=_text(header.find(f"{_W}ResourceURI")) or None,
        operation_timeout=operation_timeout,
        max_envelope_size=max_envelope_size,
        selectors=selectors,
        options=options,
        body=root.find(f"{_S}Body"),
        header=header,
    )


# --- Building -------------------------------------------------------------------------------


def _new_message_id() -> str:
    return f"uuid:{str(uuid.uuid4()).upper()}"


def _envelope(action: str, relates_to: str | None) -> tuple[etree._Element, etree._Element]:
    root = etree.Element(f"{_S}Envelope", nsmap=c.RESPONSE_NSMAP)
    header = etree.SubElement(root, f"{_S}Header")
    etree.SubElement(header, f"{_A}To").text = c.ADDRESS_ANONYMOUS
    etree.SubElement(header, f"{_A}Action", {f"{_S}mustUnderstand": "true"}).text = action
    etree.SubElement(header, f"{_A}MessageID").text = _new_message_id()
    if relates_to is not None:
        etree.SubElement(header, f"{_A}RelatesTo").text = relates_to
    body = etree.SubElement(root, f"{_S}Body")
    return root, body


def _serialize(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


@dataclass(frozen=True)
class CreateReply:
    """What a CreateResponse describes: the new shell."""

    shell_id: str
    #: The endpoint URL the client addressed (``a:Address``).
    address: str
    owner: str
    client_ip: str
    idle_timeout_seconds: float
    input_streams: str
    output_streams: str
    #: The shell's resource URI (WinRS cmd, or a PowerShell configuration for PSRP shells).
    resource_uri: str = c.RESOURCE_URI_CMD
    #: More ``rsp:Shell`` children, after the common ones (PSRP shells report their state and compression).
    extra: tuple[tuple[str, str], ...] = ()


def build_create_response(relates_to: str, reply: CreateReply) -> bytes:
    """A CreateResponse with both ``x:ResourceCreated`` (selector ShellId) and ``rsp:Shell/rsp:ShellId``.

    pywinrm reads the first element with ``Name="ShellId"``; pypsrp and Windows read ``rsp:Shell``.
    """
    root, body = _envelope(c.ACTION_CREATE_RESPONSE, relates_to)
    created = etree.SubElement(body, f"{_X}ResourceCreated")
    etree.SubElement(created, f"{_A}Address").text = reply.address
    parameters = etree.SubElement(created, f"{_A}ReferenceParameters")
    etree.SubElement(parameters, f"{_W}ResourceURI").text = reply.resource_uri
    selector_set = etree.SubElement(parameters, f"{_W}SelectorSet")
    etree.SubElement(selector_set, f"{_W}Selector", {"Name": c.SELECTOR_SHELL_ID}).text = reply.shell_id
    shell = etree.SubElement(body, f"{_RSP}Shell")
    for name, value in (
        ("ShellId", reply.shell_id),
        ("ResourceUri", reply.resource_uri),
        ("Owner", reply.owner),
        ("ClientIP", reply.client_ip),
        ("IdleTimeOut", format_duration(reply.idle_timeout_seconds)),
        ("InputStreams", reply.input_streams),
        ("OutputStreams", reply.output_streams),
        ("ShellRunTime", "P0DT0H0M0S"),
        ("ShellInactivity", "P0DT0H0M0S"),
        *reply.extra,
    ):
        etree.SubElement(shell, f"{_RSP}{name}").text = value
    return _serialize(root)


def build_command_response(relates_to: str, command_id: str) -> bytes:
    """A CommandResponse carrying the new ``rsp:CommandId``."""
    root, body = _envelope(c.ACTION_COMMAND_RESPONSE, relates_to)
    response = etree.SubElement(body, f"{_RSP}CommandResponse")
    etree.SubElement(response, f"{_RSP}CommandId").text = command_id
    return _serialize(root)


@dataclass(frozen=True)
class ReceiveReply:
    """One Receive's worth of a command's output."""

    command_id: str
    stdout: bytes = b""
    stderr: bytes = b""
    #: True when this reply carries the last of the output and the command has finished.
    done: bool = False
    exit_code: int = 0


def build_receive_response(relates_to: str, reply: ReceiveReply) -> bytes:
    """A ReceiveResponse: base64 ``rsp:Stream`` elements, then ``rsp:CommandState`` (Running, or Done with ExitCode)."""
    root, body = _envelope(c.ACTION_RECEIVE_RESPONSE, relates_to)
    response = etree.SubElement(body, f"{_RSP}ReceiveResponse")
    for name, data in ((c.STREAM_STDOUT, reply.stdout), (c.STREAM_STDERR, reply.stderr)):
        if data:
            stream = etree.SubElement(response, f"{_RSP}Stream", {"Name": name, "CommandId": reply.command_id})
            stream.text = base64.b64encode(data).decode("ascii")
    if reply.done:
        for name in (c.STREAM_STDOUT, c.STREAM_STDERR):
            etree.SubElement(response, f"{_RSP}Stream", {"Name": name, "CommandId": reply.command_id, "End": "true"})
    state = etree.SubElement(
        response,
        f"{_RSP}CommandState",
        {"CommandId": reply.command_id, "State": c.COMMAND_STATE_DONE if reply.done else c.COMMAND_STATE_RUNNING},
    )
    if reply.done:
        etree.SubElement(state, f"{_RSP}ExitCode").text = str(reply.exit_code)
    return _serialize(root)


def build_stream_receive_response(relates_to: str, command_id: str | None, payloads: list[bytes], state: str | None) -> bytes:
    """A PSRP ReceiveResponse: one base64 ``rsp:Stream Name="stdout"`` per payload, then the command's state if given.

    Args:
        relates_to: the request's MessageID.
        command_id: the pipeline's CommandId, or None for the runspace pool.
        payloads: PSRP fragments (already framed when the shell is compressed).
        state: ``CommandState`` URI (Done once the pipeline's last data is sent), or None for the pool.
    """
    root, body = _envelope(c.ACTION_RECEIVE_RESPONSE, relates_to)
    response = etree.SubElement(body, f"{_RSP}ReceiveResponse")
    attributes = {"Name": c.STREAM_STDOUT} if command_id is None else {"Name": c.STREAM_STDOUT, "CommandId": command_id}
    for payload in payloads:
        etree.SubElement(response, f"{_RSP}Stream", attributes).text = base64.b64encode(payload).decode("ascii")
    if state is not None and command_id is not None:
        etree.SubElement(response, f"{_RSP}CommandState", {"CommandId": command_id, "State": state})
    return _serialize(root)


#: Bytes reserved in a Receive budget for the two stream elements' own tags and base64 padding.
_STREAM_TAGS_SLACK_BYTES = 256


def receive_payload_budget(max_envelope_size: int, relates_to: str, command_id: str) -> int:
    """How many raw output bytes fit in one ReceiveResponse without exceeding ``max_envelope_size``.

    Measures the response with no output (Done, the widest exit code), then converts what is left
    of the envelope to raw bytes (base64 takes 4 characters per 3 bytes). May be zero or less.
    """
    skeleton = build_receive_response(relates_to, ReceiveReply(command_id, done=True, exit_code=-(2**31)))
    room = max_envelope_size - len(skeleton) - _STREAM_TAGS_SLACK_BYTES
    return (room // 4) * 3


def build_signal_response(relates_to: str) -> bytes:
    """An empty ``rsp:SignalResponse``."""
    root, body = _envelope(c.ACTION_SIGNAL_RESPONSE, relates_to)
    etree.SubElement(body, f"{_RSP}SignalResponse")
    return _serialize(root)


def build_send_response(relates_to: str) -> bytes:
    """An empty ``rsp:SendResponse``."""
    root, body = _envelope(c.ACTION_SEND_RESPONSE, relates_to)
    etree.SubElement(body, f"{_RSP}SendResponse")
    return _serialize(root)


def build_delete_response(relates_to: str) -> bytes:
    """A DeleteResponse with an empty body."""
    root, _ = _envelope(c.ACTION_DELETE_RESPONSE, relates_to)
    return _serialize(root)


def build_fault(fault: WSManFault, *, relates_to: str | None, machine: str) -> bytes:
    """A SOAP 1.2 fault in Windows' layout (Code/Subcode, Reason, Detail/WSManFault with Code and Machine).

    Args:
        fault: the fault to render.
        relates_to: the request's MessageID, or None when the request could not be read.
        machine: the server name for ``f:WSManFault/@Machine``.
    """
    root, body = _envelope(c.ACTION_FAULT, relates_to)
    soap_fault = etree.SubElement(body, f"{_S}Fault")
    code = etree.SubElement(soap_fault, f"{_S}Code")
    etree.SubElement(code, f"{_S}Value").text = f"s:{fault.soap_code}"
    subcode = etree.SubElement(code, f"{_S}Subcode")
    namespace, local = fault.subcode
    prefix = next(p for p, ns in c.RESPONSE_NSMAP.items() if ns == namespace)
    etree.SubElement(subcode, f"{_S}Value").text = f"{prefix}:{local}"
    reason = etree.SubElement(soap_fault, f"{_S}Reason")
    etree.SubElement(reason, f"{_S}Text", {_XML_LANG: "en-US"}).text = fault.message
    detail = etree.SubElement(soap_fault, f"{_S}Detail")
    wsman_fault = etree.SubElement(
        detail,
        f"{_F}WSManFault",
        {"Code": str(int(fault.wsman_code)), "Machine": machine},
        nsmap={"f": c.NS_WSMAN_FAULT},
    )
    etree.SubElement(wsman_fault, f"{_F}Message").text = fault.message
    return _serialize(root)
