"""The PSRP door in memory: psrpcore's client replays what Import-PSSession sends, through the WS-Management endpoint.

No HTTP and no IMAP: requests are SOAP envelopes handed to :class:`shim.wsman.WinRSEndpoint`,
the engine is a real MigrationService on a temporary instance (no scheduler), and calls that
would touch a mail server use ``-WhatIf``.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psrpcore
import pytest
from lxml import etree
from psrpcore import types as pst

from engine.service import MigrationService
from shim.cmdlets import Registry, Session
from shim.host import ScriptOutcome
from shim.psrp import RunspaceRegistry
from shim.psrp.xpress import XpressError, frame, unframe
from shim.wsman import RequestContext, ShellRegistry, WinRSEndpoint
from shim.wsman import constants as c
from shim.wsman.powershell import PowerShellEndpoint

EXCHANGE_URI = "http://schemas.microsoft.com/powershell/Microsoft.Exchange"
NS = {"s": c.NS_SOAP, "a": c.NS_ADDRESSING, "w": c.NS_WSMAN, "rsp": c.NS_SHELL, "f": c.NS_WSMAN_FAULT}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    instance = tmp_path_factory.mktemp("psrp-unit")
    service = MigrationService(instance / "instance", run_scheduler=False)
    try:
        yield Registry(service, import_folder=instance / "import")
    finally:
        service.close()


def _no_winrs(script: str, user: str) -> ScriptOutcome:
    raise AssertionError("the WinRS runner is not used by PSRP")


class Wire:
    """A WS-Management endpoint with PSRP, and a psrpcore client pool talking to it through envelopes."""

    def __init__(self, registry: Registry, *, compression: bool = False, limit: int = 5) -> None:
        def make_session(user: str) -> Session:
            return registry.session(user)

        self.pools = RunspaceRegistry(idle_timeout=60, max_per_user=limit)
        self.endpoint = WinRSEndpoint(_no_winrs, ShellRegistry(), machine="test",
                                      powershell=PowerShellEndpoint(make_session, self.pools))
        self.context = RequestContext("admin", "127.0.0.1", "http://127.0.0.1/powershell")
        self.compression = compression
        self.shell_id = str(uuid.uuid4()).upper()
        self.client = psrpcore.ClientRunspacePool()
        self.exchanges: list[tuple[bytes, int, bytes]] = []

    def post(self, action: str, body: str = "", *, selector: bool = True, timeout: str = "PT2S",
             max_envelope: int = 153600, header: str = "") -> tuple[int, etree._Element]:
        selectors = (f'<w:SelectorSet><w:Selector Name="ShellId">{self.shell_id}</w:Selector></w:SelectorSet>'
                     if selector else "")
        message_id = f"uuid:{str(uuid.uuid4()).upper()}"
        request = (
            f'<s:Envelope xmlns:s="{c.NS_SOAP}" xmlns:a="{c.NS_ADDRESSING}" xmlns:w="{c.NS_WSMAN}" '
            f'xmlns:rsp="{c.NS_SHELL}"><s:Header><a:Action>{action}</a:Action><a:MessageID>{message_id}</a:MessageID>'
            f"<w:MaxEnvelopeSize>{max_envelope}</w:MaxEnvelopeSize><w:OperationTimeout>{timeout}</w:OperationTimeout>"
            f"<w:ResourceURI>{EXCHANGE_URI}</w:ResourceURI>{selectors}{header}</s:Header><s:Body>{body}</s:Body></s:Envelope>"
        ).encode()
        status, response = self.endpoint.handle(request, self.context)
        self.exchanges.append((request, status, response))
        root = etree.fromstring(response)
        assert root.findtext("s:Header/a:RelatesTo", namespaces=NS) == message_id
        return status, root

    def open(self, max_envelope: int = 153600) -> None:
        self.client.open()
        creation = base64.b64encode(self.client.data_to_send().data).decode()
        compression = ('<rsp:CompressionType s:mustUnderstand="true">xpress</rsp:CompressionType>'
                       if self.compression else "")
        status, root = self.post(c.ACTION_CREATE, (
            f'<rsp:Shell ShellId="{self.shell_id}"><rsp:InputStreams>stdin pr</rsp:InputStreams>'
            f'<rsp:OutputStreams>stdout</rsp:OutputStreams><creationXml xmlns="http://schemas.microsoft.com/powershell">'
            f"{creation}</creationXml></rsp:Shell>"), selector=False, header=compression, max_envelope=max_envelope)
        assert status == 200, etree.tostring(root)
        assert root.findtext(".//w:Selector[@Name='ShellId']", namespaces=NS) == self.shell_id
        assert root.findtext(".//rsp:Shell/rsp:ResourceUri", namespaces=NS) == EXCHANGE_URI
        while self.client.state != pst.RunspacePoolState.Opened:
            self.receive(None)

    def receive(self, pipeline: Any, **kwargs: Any) -> list[Any]:
        command = f' CommandId="{str(pipeline.pipeline_id).upper()}"' if pipeline is not None else ""
        status, root = self.post(c.ACTION_RECEIVE, f"<rsp:Receive><rsp:DesiredStream{command}>stdout"
                                 "</rsp:DesiredStream></rsp:Receive>", **kwargs)
        assert status == 200, etree.tostring(root)
        events = []
        for stream in root.iterfind(".//rsp:Stream", NS):
            data = base64.b64decode(stream.text or "")
            if self.compression:
                data = unframe(data)
            self.client.receive_data(psrpcore.PSRPPayload(data, psrpcore.StreamType.default,
                                                          pipeline.pipeline_id if pipeline else None))
            while (event := self.client.next_event()) is not None:
                events.append(event)
        return events

    def invoke(self, pipeline: Any, *, send_input: list[Any] | None = None) -> list[Any]:
        pipeline.start()
        first = self.client.data_to_send()
        command_id = str(pipeline.pipeline_id).upper()
        status, root = self.post(c.ACTION_COMMAND, (
            f'<rsp:CommandLine CommandId="{command_id}"><rsp:Command></rsp:Command>'
            f"<rsp:Arguments>{base64.b64encode(first.data).decode()}</rsp:Arguments></rsp:CommandLine>"))
        assert status == 200, etree.tostring(root)
        assert root.findtext(".//rsp:CommandId", namespaces=NS) == command_id
        if send_input is not None:
            for value in send_input:
                pipeline.send(value)
            pipeline.send_eof()
            while (more := self.client.data_to_send()) is not None:
                data = frame(more.data) if self.compression else more.data
                status, _ = self.post(c.ACTION_SEND, f'<rsp:Send><rsp:Stream Name="stdin" CommandId="{command_id}">'
                                      f"{base64.b64encode(data).decode()}</rsp:Stream></rsp:Send>")
                assert status == 200
        events: list[Any] = []
        deadline = time.monotonic() + 10
        while pipeline.state == pst.PSInvocationState.Running and time.monotonic() < deadline:
            events.extend(self.receive(pipeline))
        return events


def outputs(events: list[Any]) -> list[Any]:
    return [e.data for e in events if isinstance(e, psrpcore.PipelineOutputEvent)]


def errors(events: list[Any]) -> list[Any]:
    return [e.record for e in events if isinstance(e, psrpcore.ErrorRecordEvent)]


def test_import_pssession_replay(registry: Registry) -> None:
    wire = Wire(registry)
    wire.open()
    # 1. Import-PSSession's GET_COMMAND_METADATA: every command type but applications and scripts.
    types = pst.CommandTypes.Alias | pst.CommandTypes.Function | pst.CommandTypes.Filter | pst.CommandTypes.Cmdlet
    meta = psrpcore.ClientGetCommandMetadata(wire.client, "*", command_type=types)
    found = outputs(wire.invoke(meta))
    assert found[0].Count == len(registry.cmdlets) == len(found) - 1
    names = [f.Name for f in found[1:]]
    assert names == [c.name for c in registry.cmdlets]
    batch = found[1 + names.index("New-MigrationBatch")]
    assert batch.CommandType == pst.CommandTypes.Cmdlet
    assert batch.Parameters["CSVData"].ParameterType == "System.Byte[]"
    assert batch.Parameters["AutoStart"].SwitchParameter is True
    assert {"ErrorAction", "OutBuffer", "PipelineVariable", "WhatIf", "Confirm"} <= set(batch.Parameters)

    # 2. Get-FormatData -TypeName * -PowerShellVersion 5.1 | Measure-Object: one object with Count.
    ps = psrpcore.ClientPowerShell(wire.client)
    ps.add_command("Get-FormatData").add_parameter("TypeName", ["*"]).add_parameter("PowerShellVersion", "5.1")
    ps.add_command("Measure-Object")
    events = wire.invoke(ps)
    [measured] = outputs(events)
    assert measured.Count == 0 and errors(events) == []
    assert "Deserialized.Microsoft.PowerShell.Commands.GenericMeasureInfo" in measured.PSTypeNames

    # 3. Get-FormatData itself: nothing, without an error.
    ps = psrpcore.ClientPowerShell(wire.client)
    ps.add_command("Get-FormatData").add_parameter("TypeName", ["*"]).add_parameter("PowerShellVersion", "5.1")
    events = wire.invoke(ps)
    assert outputs(events) == [] and errors(events) == []
    assert ps.state == pst.PSInvocationState.Completed

    # 4. A proxied call as Invoke-Command converts it: '-Name:' keys, SwitchParameter objects, byte[] and object[].
    switch = pst.PSObject()
    switch.PSObject.type_names = ["System.Management.Automation.SwitchParameter", "System.ValueType", "System.Object"]
    switch.PSObject.adapted_properties.append(pst.PSNoteProperty("IsPresent", True))
    switch.PSObject.to_string = "True"
    csv = b"EmailAddress,UserName,Password\r\nann@contoso.edu,ann,secret\r\n"
    for data in (pst.PSByteArray(csv), [pst.PSByte(b) for b in csv]):
        ps = psrpcore.ClientPowerShell(wire.client)
        ps.add_command("New-MigrationBatch")
        for name, value in (("-Imap:", switch), ("-Name:", "Proxied1"), ("-CSVData:", data),
                            ("-RemoteServer:", "imap.contoso.edu"), ("-WhatIf:", switch)):
            ps.add_parameter(name, value)
        events = wire.invoke(ps)
        assert errors(events) == [] and ps.state == pst.PSInvocationState.Completed
        assert outputs(events) == ['What if: Performing the operation "Creating migration batch" on target "Proxied1".'] \
            or outputs(events)[0].startswith('What if: ')

    # 5. Pipeline input (Send): two objects counted by Measure-Object.
    ps = psrpcore.ClientPowerShell(wire.client, no_input=False)
    ps.add_command("Measure-Object")
    [measured] = outputs(wire.invoke(ps, send_input=["a", "b"]))
    assert measured.Count == 2

    status, _ = wire.post(c.ACTION_DELETE)
    assert status == 200 and wire.pools.count() == 0


def test_errors_are_error_records_and_terminating_ones_fail_the_pipeline(registry: Registry) -> None:
    wire = Wire(registry)
    wire.open()
    ps = psrpcore.ClientPowerShell(wire.client)
    ps.add_command("Get-MigrationBatch").add_parameter("-Identity:", "missing")
    events = wire.invoke(ps)
    [record] = errors(events)
    assert record.FullyQualifiedErrorId == "ManagementObjectNotFoundException,Get-MigrationBatch"
    assert record.CategoryInfo.Category == pst.ErrorCategory.ObjectNotFound
    assert record.CategoryInfo.TargetName == "missing"
    assert ps.state == pst.PSInvocationState.Completed

    ps = psrpcore.ClientPowerShell(wire.client)
    ps.add_script("$x = 1")
    events = wire.invoke(ps)
    state = [e for e in events if isinstance(e, psrpcore.PipelineStateEvent)][-1]
    assert ps.state == pst.PSInvocationState.Failed
    assert state.reason.FullyQualifiedErrorId == "ScriptsNotAllowed"
    assert state.reason.CategoryInfo.Category == pst.ErrorCategory.ParserError


@pytest.mark.parametrize("code", ["http://schemas.microsoft.com/powershell/signal/crtl_c",
                                  "http://schemas.microsoft.com/powershell/signal/CTRL_C", "powershell/signal/ctrl_c"])
def test_ctrl_c_in_either_spelling_stops_a_pipeline(registry: Registry, code: str) -> None:
    wire = Wire(registry)
    wire.open()
    ps = psrpcore.ClientPowerShell(wire.client)
    ps.add_command("Start-Sleep").add_parameter("Seconds", 30)
    ps.start()
    command_id = str(ps.pipeline_id).upper()
    first = wire.client.data_to_send()
    wire.post(c.ACTION_COMMAND, f'<rsp:CommandLine CommandId="{command_id}"><rsp:Arguments>'
              f"{base64.b64encode(first.data).decode()}</rsp:Arguments></rsp:CommandLine>")
    wire.receive(ps)  # Running
    started = time.monotonic()
    status, _ = wire.post(c.ACTION_SIGNAL, f'<rsp:Signal CommandId="{command_id}"><rsp:Code>{code}</rsp:Code></rsp:Signal>')
    assert status == 200
    wire.receive(ps)
    assert ps.state == pst.PSInvocationState.Stopped and time.monotonic() - started < 5
    status, _ = wire.post(c.ACTION_SIGNAL, f'<rsp:Signal CommandId="{command_id}"><rsp:Code>'
                          "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/Terminate</rsp:Code></rsp:Signal>")
    assert status == 200
    status, root = wire.post(c.ACTION_RECEIVE, f'<rsp:Receive><rsp:DesiredStream CommandId="{command_id}">stdout'
                             "</rsp:DesiredStream></rsp:Receive>")
    assert (status, root.find(".//f:WSManFault", NS).get("Code")) == (500, str(c.FaultCode.INVALID_SELECTORS))


def test_pool_receive_long_polls_then_times_out(registry: Registry) -> None:
    wire = Wire(registry)
    wire.open()
    started = time.monotonic()
    status, root = wire.post(c.ACTION_RECEIVE, "<rsp:Receive><rsp:DesiredStream>stdout</rsp:DesiredStream></rsp:Receive>",
                             timeout="PT1S")
    assert status == 500 and root.find(".//f:WSManFault", NS).get("Code") == str(c.FaultCode.OPERATION_TIMED_OUT)
    assert 0.5 < time.monotonic() - started < 1.5


def test_big_output_stays_under_max_envelope_size(registry: Registry) -> None:
    wire = Wire(registry)
    wire.open(max_envelope=8192)  # fragments are sized from the Create's MaxEnvelopeSize
    meta = psrpcore.ClientGetCommandMetadata(wire.client, "*")
    meta.start()
    first = wire.client.data_to_send()
    command_id = str(meta.pipeline_id).upper()
    wire.post(c.ACTION_COMMAND, f'<rsp:CommandLine CommandId="{command_id}"><rsp:Arguments>'
              f"{base64.b64encode(first.data).decode()}</rsp:Arguments></rsp:CommandLine>")
    received = 0
    while meta.state != pst.PSInvocationState.Completed:
        events = wire.receive(meta, max_envelope=8192)
        received += len(outputs(events))
    assert received == len(registry.cmdlets) + 1
    receives = [r for q, s, r in wire.exchanges if b"ReceiveResponse" in r]
    assert len(receives) > 5 and max(len(r) for r in receives) <= 8192


def test_xpress_sessions_frame_streams(registry: Registry) -> None:
    wire = Wire(registry, compression=True)
    wire.open()
    ps = psrpcore.ClientPowerShell(wire.client, no_input=False)
    ps.add_command("Measure-Object")
    [measured] = outputs(wire.invoke(ps, send_input=[1, 2, 3]))
    assert measured.Count == 3


def test_session_limit_per_admin_and_idle_expiry(registry: Registry) -> None:
    first = Wire(registry, limit=1)
    first.open()
    second = Wire(registry)
    second.endpoint, second.pools = first.endpoint, first.pools
    second.client.open()
    creation = base64.b64encode(second.client.data_to_send().data).decode()
    status, root = second.post(c.ACTION_CREATE, (
        f'<rsp:Shell ShellId="{second.shell_id}"><creationXml xmlns="http://schemas.microsoft.com/powershell">'
        f"{creation}</creationXml></rsp:Shell>"), selector=False)
    assert (status, root.find(".//f:WSManFault", NS).get("Code")) == (500, str(c.FaultCode.QUOTA_MAX_SHELLS))
    now = [0.0]
    pools = RunspaceRegistry(idle_timeout=10, max_per_user=1, clock=lambda: now[0])
    shell = first.pools.get(first.shell_id)
    assert shell is not None
    pools.add(shell)
    now[0] = 11.0
    assert pools.reap() == 1 and pools.count() == 0


def test_unknown_shell_and_bad_creation_are_faults(registry: Registry) -> None:
    wire = Wire(registry)
    status, root = wire.post(c.ACTION_RECEIVE, "<rsp:Receive><rsp:DesiredStream>stdout</rsp:DesiredStream></rsp:Receive>")
    assert (status, root.find(".//f:WSManFault", NS).get("Code")) == (500, str(c.FaultCode.INVALID_SELECTORS))
    status, root = wire.post(c.ACTION_CREATE, '<rsp:Shell><creationXml xmlns="http://schemas.microsoft.com/powershell">'
                             "AAAA</creationXml></rsp:Shell>", selector=False)
    assert (status, root.find(".//f:WSManFault", NS).get("Code")) == (500, str(c.FaultCode.INVALID_SOAP_BODY))


def _literal_stream(data: bytes, matches: list[tuple[int, int, int]]) -> bytes:
    """An LZ77+Huffman block where every symbol has a 9-bit code (so code == symbol): literals, then matches.

    ``matches`` are (position to insert before, length, offset).
    """
    table = bytes([0x99] * 256)  # every one of the 512 symbols has length 9
    bits: list[int] = []

    def put(value: int, count: int) -> None:
        bits.extend((value >> (count - 1 - i)) & 1 for i in range(count))

    extra = bytearray()
    for index, byte in enumerate(data):
        for position, length, offset in matches:
            if position == index:
                offset_bits = offset.bit_length() - 1
                put(256 + offset_bits * 16 + (length - 3), 9)
                put(offset - (1 << offset_bits), offset_bits)
        put(byte, 9)
    while len(bits) % 16:
        bits.append(0)
    words = bytearray()
    for start in range(0, len(bits), 16):
        value = int("".join(map(str, bits[start:start + 16])), 2)
        words += value.to_bytes(2, "little")
    return table + bytes(words) + b"\x00" * 4 + bytes(extra)


def test_xpress_decodes_stored_and_lz77_huffman_blocks() -> None:
    assert unframe(frame(b"x" * 70000)) == b"x" * 70000
    block = _literal_stream(b"abcdef", [(3, 3, 3)])  # abc + (copy 3 from 3 back) + def
    header = (9 - 1).to_bytes(2, "little") + (len(block) - 1).to_bytes(2, "little")
    assert unframe(header + block) == b"abcabcdef"
    with pytest.raises(XpressError):
        unframe(b"\x05\x00")
    with pytest.raises(XpressError):
        unframe(b"\x00\x01\x03\x00" + bytes(4))
