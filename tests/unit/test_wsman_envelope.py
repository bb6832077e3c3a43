"""Envelope parsing and building, checked against pywinrm's own request builder and reply parser (no HTTP)."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator

import pytest
import xmltodict
from winrm.exceptions import WinRMOperationTimeoutError, WinRMTransportError, WSManFaultError
from winrm.protocol import Protocol

from shim.wsman import constants as c
from shim.wsman.envelope import (
    CreateReply,
    ReceiveReply,
    build_command_response,
    build_create_response,
    build_delete_response,
    build_fault,
    build_receive_response,
    build_signal_response,
    format_duration,
    parse_duration,
    parse_request,
    receive_payload_budget,
)
from shim.wsman.faults import InvalidHeader, InvalidXml, OperationTimedOut, ShellNotFound


#: ``answer(message_id) -> (http status, body)``
Answer = Callable[[str], tuple[int, bytes]]


class CannedProtocol(Protocol):
    """pywinrm's Protocol whose transport answers with canned replies; keeps what was sent."""

    def __init__(self) -> None:
        super().__init__("http://127.0.0.1:1/wsman", transport="basic", username="u", password="p", proxy=None, ca_trust_path=None)  # type: ignore[arg-type]
        self.sent: list[str] = []
        self._answer: Answer = lambda _: (500, b"")
        self.transport.send_message = self._transport_send  # type: ignore[method-assign]

    def answer(self, answer: Answer) -> None:
        """Answer the following requests with ``answer(request MessageID)``."""
        self._answer = answer

    def _transport_send(self, message: str | bytes) -> bytes:
        text = message.decode() if isinstance(message, bytes) else message
        self.sent.append(text)
        status, body = self._answer(xmltodict.parse(text)["env:Envelope"]["env:Header"]["a:MessageID"])
        if status >= 400:
            raise WinRMTransportError("http", status, body.decode())
        return body


@pytest.fixture
def protocol() -> CannedProtocol:
    return CannedProtocol()


def test_parse_pywinrm_create_request(protocol: CannedProtocol) -> None:
    protocol.answer(lambda mid: (200, build_create_response(mid, _create_reply("S-1"))))
    assert protocol.open_shell(codepage=65001) == "S-1"
    request = parse_request(protocol.sent[0].encode())
    assert request.action == c.ACTION_CREATE
    assert request.message_id.startswith("uuid:")
    assert request.resource_uri == c.RESOURCE_URI_CMD
    assert request.operation_timeout == 20.0
    assert request.max_envelope_size == 153600
    assert request.options == {"WINRS_NOPROFILE": "FALSE", "WINRS_CODEPAGE": "65001"}
    assert request.selectors == {}
    assert request.body_child("Shell").findtext(f"{{{c.NS_SHELL}}}OutputStreams") == "stdout stderr"


def test_parse_pywinrm_command_request_with_selector(protocol: CannedProtocol) -> None:
    protocol.answer(lambda mid: (200, build_command_response(mid, "C-1")))
    assert protocol.run_command("S-1", "Get-MigrationBatch", ["-Identity", "b1"]) == "C-1"
    request = parse_request(protocol.sent[0].encode())
    assert request.selectors == {"ShellId": "S-1"}
    command_line = request.body_child("CommandLine")
    assert command_line.findtext(f"{{{c.NS_SHELL}}}Command") == "Get-MigrationBatch"
    assert command_line.findtext(f"{{{c.NS_SHELL}}}Arguments") == "-Identity b1"
    with pytest.raises(Exception, match="rsp:Receive"):
        request.body_child("Receive")


def test_create_response_has_both_shell_id_forms() -> None:
    body = build_create_response("uuid:1", _create_reply("S-9"))
    assert b'<w:Selector Name="ShellId">S-9</w:Selector>' in body
    assert b"<rsp:ShellId>S-9</rsp:ShellId>" in body
    assert b"<rsp:IdleTimeOut>PT900.000S</rsp:IdleTimeOut>" in body
    assert b"<a:RelatesTo>uuid:1</a:RelatesTo>" in body
    assert b"<a:Action s:mustUnderstand=\"true\">" + c.ACTION_CREATE_RESPONSE.encode() in body


def test_signal_and_delete_responses_satisfy_pywinrm_relates_to_asserts(protocol: CannedProtocol) -> None:
    protocol.answer(lambda mid: (200, build_signal_response(mid)))
    protocol.cleanup_command("S-1", "C-1")
    protocol.answer(lambda mid: (200, build_delete_response(mid)))
    protocol.close_shell("S-1")
    assert b"<s:Body/>" in build_delete_response("uuid:x")


def test_receive_responses_running_then_done(protocol: CannedProtocol) -> None:
    protocol.answer(lambda mid: (200, build_receive_response(mid, ReceiveReply("C-1", b"part 1", b""))))
    assert protocol.get_command_output_raw("S-1", "C-1") == (b"part 1", b"", -1, False)
    protocol.answer(lambda mid: (200, build_receive_response(mid, ReceiveReply("C-1", b"part 2", b"oops", done=True, exit_code=3))))
    assert protocol.get_command_output_raw("S-1", "C-1") == (b"part 2", b"oops", 3, True)
    protocol.answer(lambda mid: (200, build_receive_response(mid, ReceiveReply("C-1", done=True, exit_code=0))))
    assert protocol.get_command_output_raw("S-1", "C-1") == (b"", b"", 0, True)


def test_fault_is_parsed_by_pywinrm(protocol: CannedProtocol) -> None:
    fault = ShellNotFound("The shell was not found.")
    protocol.answer(lambda mid: (500, build_fault(fault, relates_to=mid, machine="mailshift-1")))
    with pytest.raises(WSManFaultError) as excinfo:
        protocol.run_command("S-1", "Get-Date")
    error = excinfo.value
    assert (error.code, error.fault_code, error.fault_subcode) == (500, "s:Sender", "w:InvalidSelectors")
    assert (error.wsman_fault_code, error.reason) == (2150858843, "The shell was not found.")
    body = build_fault(fault, relates_to="uuid:7", machine="mailshift-1")
    assert b'Machine="mailshift-1"' in body and b'xml:lang="en-US"' in body
    assert c.ACTION_FAULT.encode() in body


def test_timeout_fault_is_retried_by_pywinrm(protocol: CannedProtocol) -> None:
    answers: Iterator[Answer] = iter(
        [
            lambda mid: (500, build_fault(OperationTimedOut("later"), relates_to=mid, machine="m")),
            lambda mid: (200, build_receive_response(mid, ReceiveReply("C-1", b"done", done=True))),
        ]
    )
    protocol.answer(lambda mid: next(answers)(mid))
    with pytest.raises(WinRMOperationTimeoutError):
        protocol.get_command_output_raw("S-1", "C-1")
    assert b"s:Receiver" in build_fault(OperationTimedOut("later"), relates_to=None, machine="m")
    assert protocol.get_command_output_raw("S-1", "C-1") == (b"done", b"", 0, True)


@pytest.mark.parametrize("max_size", [4000, 20000, 153600, 512000])
def test_receive_payload_budget_keeps_the_response_under_max_envelope_size(max_size: int) -> None:
    budget = receive_payload_budget(max_size, "uuid:" + "A" * 36, "C" * 36)
    assert budget > 0
    half = budget // 2
    body = build_receive_response("uuid:" + "A" * 36, ReceiveReply("C" * 36, b"\xff" * half, b"\xfe" * (budget - half), True, -(2**31)))
    assert max_size * 0.9 < len(body) <= max_size


def test_receive_payload_budget_of_a_tiny_envelope_is_not_positive() -> None:
    assert receive_payload_budget(600, "uuid:1", "C-1") <= 0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("PT20S", 20.0), ("PT0.5S", 0.5), ("PT1M30.250S", 90.25), ("P1DT2H", 93600.0), ("PT60.000S", 60.0), ("P0D", 0.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["20", "PT", "P", "P1Y", "PTS", "-PT1S", "PT1H2S3M"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_format_duration_round_trips() -> None:
    assert parse_duration(format_duration(900)) == 900.0


def _minimal(header_extra: str = "", action: str = c.ACTION_CREATE, prolog: str = "") -> bytes:
    return (
        f'{prolog}<s:Envelope xmlns:s="{c.NS_SOAP}" xmlns:a="{c.NS_ADDRESSING}" xmlns:w="{c.NS_WSMAN}"><s:Header>'
        f"<a:Action>{action}</a:Action><a:MessageID>uuid:1</a:MessageID>{header_extra}</s:Header><s:Body/></s:Envelope>"
    ).encode()


def test_parse_ignores_unknown_headers_and_reads_defaults() -> None:
    request = parse_request(_minimal("<x:Unknown xmlns:x='urn:x'>1</x:Unknown><a:To>anything</a:To>"))
    assert (request.action, request.message_id, request.resource_uri) == (c.ACTION_CREATE, "uuid:1", None)
    assert (request.operation_timeout, request.max_envelope_size) == (None, None)


@pytest.mark.parametrize(
    "data",
    [
        _minimal(prolog='<!DOCTYPE s:Envelope [<!ENTITY e "x">]>'),
        _minimal(prolog='<!DOCTYPE s:Envelope SYSTEM "http://127.0.0.1:1/evil.dtd">'),
        b"not xml",
        b"<s:Envelope xmlns:s='urn:not-soap-1.2'/>",
        _minimal().replace(b"<s:Body/></s:Envelope>", b""),
    ],
)
def test_parse_refuses_bad_xml(data: bytes) -> None:
    with pytest.raises(InvalidXml):
        parse_request(data)


def test_doctype_is_refused_even_in_utf16() -> None:
    data = _minimal(prolog='<?xml version="1.0" encoding="utf-16"?><!DOCTYPE s:Envelope [<!ENTITY e "x">]>').decode().encode("utf-16")
    with pytest.raises(InvalidXml):
        parse_request(data)


@pytest.mark.parametrize(
    "data",
    [
        _minimal(action=""),
        _minimal().replace(b"<a:MessageID>uuid:1</a:MessageID>", b""),
        _minimal("<w:OperationTimeout>soon</w:OperationTimeout>"),
        _minimal("<w:MaxEnvelopeSize>big</w:MaxEnvelopeSize>"),
        f'<s:Envelope xmlns:s="{c.NS_SOAP}"><s:Body/></s:Envelope>'.encode(),
    ],
)
def test_parse_refuses_bad_headers(data: bytes) -> None:
    with pytest.raises(InvalidHeader):
        parse_request(data)


def test_stream_text_is_base64() -> None:
    body = build_receive_response("uuid:1", ReceiveReply("C-1", b"\x00\x01", b""))
    assert base64.b64encode(b"\x00\x01") in body
    assert b"CommandState/Running" in body and b"ExitCode" not in body


def _create_reply(shell_id: str) -> CreateReply:
    return CreateReply(shell_id, "http://h/wsman", "alice", "127.0.0.1", 900.0, "stdin", "stdout stderr")
