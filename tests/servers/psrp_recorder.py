"""Records a real pypsrp session against the PSRP door into ``tests/fixtures/psrp/`` (the regression fixture set).

Run ``.venv/bin/python -m tests.servers.psrp_recorder`` after an intended protocol change; the
fixtures are rewritten and ``tests/unit/test_psrp_recorded.py`` replays them.

The door is the real Flask app (:func:`shim.app.create_app`) on a temporary instance with no
scheduler, served over loopback HTTP by werkzeug; pypsrp connects with Basic auth (so nothing is
encrypted) and the WSGI layer keeps every request and response body. The session is what a
script does through ``New-PSSession`` + ``Import-PSSession``: open a RunspacePool on
``Microsoft.Exchange``, GET_COMMAND_METADATA for ``*``, the two ``Get-FormatData`` pipelines, a
proxied ``New-MigrationBatch -WhatIf:`` with ``-Name:`` keys, SwitchParameter objects and a
``byte[]`` CSVData, ``Get-MigrationConfig``, errors (unknown command, binding error, object not
found), a refused script, a Receive on a terminated pipeline (a WS-Management fault), and close.

Files: ``NNN-<step>-<Action>.request.xml`` / ``.response.xml`` (pretty-printed; base64 wrapped at
76 columns; an XML comment after each base64 element lists its PSRP fragments and messages, for
review only: comments are ignored by the door and by the test), and ``index.json`` (the order).
Credentials are never stored (they travel in HTTP headers, which are not kept).

The helpers :class:`Defragmenter` and :func:`psrp_streams` are shared with the replay test.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import logging
import re
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree
from psrpcore._payload import Fragment, Message, unpack_fragment, unpack_message

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "psrp"
ADMIN = "admin"
#: The administrator the session logs in as (recorded and replayed: the CreateResponse names it as Owner).
PASSWORD = "recorded-session-password"
#: Settings that show in responses (IdleTimeOut) are fixed, whatever the environment says.
SETTINGS: dict[str, Any] = {"RUN_SCHEDULER": False, "SHELL_IDLE_TIMEOUT": 900.0, "MAX_SHELLS_PER_USER": 25}
EXCHANGE = "Microsoft.Exchange"

NS_SOAP = "http://www.w3.org/2003/05/soap-envelope"
NS_ADDRESSING = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
NS_SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
NS_POWERSHELL = "http://schemas.microsoft.com/powershell"
_FRAGMENT_HEADER_BYTES = 21
_WRAP = 76
_COMMENT_DATA_CHARS = 1500


# --- shared with the replay test ----------------------------------------------------------------


class Defragmenter:
    """PSRP fragments in, whole messages out; one per stream direction and target (pool or pipeline)."""

    def __init__(self) -> None:
        self._partial: dict[int, bytearray] = {}

    def feed(self, data: bytes) -> list[tuple[Fragment, Message | None]]:
        """Every fragment in ``data`` (one payload may hold several), with the message it completes, if any.

        Raises:
            ValueError: when the bytes are not PSRP fragments, or a fragment continues no started message.
        """
        out: list[tuple[Fragment, Message | None]] = []
        view = bytearray(data)
        while view:
            if len(view) < _FRAGMENT_HEADER_BYTES:
                raise ValueError(f"{len(view)} trailing bytes are not a PSRP fragment")
            fragment = unpack_fragment(view)
            size = int.from_bytes(view[17:21], "big")
            if len(fragment.data) != size:
                raise ValueError(f"a PSRP fragment announces {size} bytes but {len(fragment.data)} follow")
            view = view[_FRAGMENT_HEADER_BYTES + size:]
            if fragment.start:
                self._partial[fragment.object_id] = bytearray()
            if fragment.object_id not in self._partial:
                raise ValueError(f"fragment {fragment.fragment_id} of object {fragment.object_id} has no start")
            self._partial[fragment.object_id] += fragment.data
            message = unpack_message(self._partial.pop(fragment.object_id)) if fragment.end else None
            out.append((fragment, message))
        return out

    @property
    def pending(self) -> int:
        """Messages started and not finished."""
        return len(self._partial)


def psrp_streams(root: etree._Element) -> Iterator[tuple[etree._Element, str | None, bytes]]:
    """The base64 PSRP elements of an envelope: (element, CommandId or None, bytes).

    ``creationXml`` (Create), ``rsp:Arguments`` (Command), ``rsp:Stream`` (Send, ReceiveResponse).
    """
    for element in root.iter(f"{{{NS_POWERSHELL}}}creationXml", f"{{{NS_SHELL}}}Arguments", f"{{{NS_SHELL}}}Stream"):
        text = "".join((element.text or "").split())
        if not text:
            continue
        command_id = element.get("CommandId")
        if command_id is None and element.tag == f"{{{NS_SHELL}}}Arguments":
            parent = element.getparent()
            command_id = parent.get("CommandId") if parent is not None else None
        yield element, command_id.upper() if command_id else None, base64.b64decode(text)


def action_name(root: etree._Element) -> str:
    """The last segment of ``a:Action`` (``Create``, ``Receive``, ``ReceiveResponse``, ``fault``...)."""
    action = root.findtext(f"{{{NS_SOAP}}}Header/{{{NS_ADDRESSING}}}Action") or ""
    return action.strip().rsplit("/", 1)[-1]


# --- recording ------------------------------------------------------------------------------------


@dataclass
class Exchange:
    """One request and its response, as sent on the wire."""

    step: str
    request: bytes
    status: int
    response: bytes


class Tape:
    """WSGI middleware keeping every POST body and the response to it, labelled with the current step."""

    def __init__(self, app: Any) -> None:
        self._wsgi = app.wsgi_app
        app.wsgi_app = self
        self.step = "start"
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        status: list[int] = []

        def start(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status.append(int(line.split()[0]))
            return start_response(line, headers, exc_info)

        result = self._wsgi(environ, start)
        try:
            response = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if body and status and status[0] in (200, 500):
            with self._lock:
                self.exchanges.append(Exchange(self.step, body, status[0], response))
        return [response]


def run_session(port: int, tape: Tape) -> None:
    """The client side: pypsrp doing what Import-PSSession and a proxied call do."""
    from pypsrp.complex_objects import CommandType, GenericComplexObject
    from pypsrp.exceptions import WSManFaultError
    from pypsrp.complex_objects import PSInvocationState
    from pypsrp.powershell import PowerShell, RunspacePool
    from pypsrp.wsman import WSMan

    def step(name: str) -> None:
        tape.step = name

    def invoke(ps: PowerShell) -> PowerShell:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pypsrp warns about host calls it ignores
            ps.invoke()
        return ps

    def switch() -> GenericComplexObject:
        value = GenericComplexObject()
        value.types = ["System.Management.Automation.SwitchParameter", "System.ValueType", "System.Object"]
        value.adapted_properties = {"IsPresent": True}
        value.to_string = "True"
        return value

    connection = WSMan("127.0.0.1", port=port, path="powershell", ssl=False, auth="basic", encryption="never",
                       username=ADMIN, password=PASSWORD, operation_timeout=5, read_timeout=15)
    step("open")
    with RunspacePool(connection, configuration_name=EXCHANGE) as rp:
        step("command-metadata")
        kinds = CommandType.ALIAS | CommandType.FUNCTION | CommandType.FILTER | CommandType.CMDLET
        metadata = rp.get_command_metadata("*", command_types=kinds)
        assert any(m.name == "New-MigrationBatch" for m in metadata)

        step("format-data-measure")
        ps = PowerShell(rp)
        ps.add_cmdlet("Get-FormatData").add_parameter("TypeName", ["*"]).add_parameter("PowerShellVersion", "5.1")
        ps.add_cmdlet("Measure-Object")
        assert not invoke(ps).had_errors

        step("format-data")
        ps = PowerShell(rp)
        ps.add_cmdlet("Get-FormatData").add_parameter("TypeName", ["*"]).add_parameter("PowerShellVersion", "5.1")
        assert invoke(ps).output == []

        step("proxied-new-migration-batch")  # as Import-PSSession's proxy sends it: '-Name:' keys, switch objects
        csv = b"EmailAddress,UserName,Password\r\nann@contoso.edu,ann,secret\r\n"
        ps = PowerShell(rp)
        ps.add_cmdlet("New-MigrationBatch")
        for name, value in (("-Imap:", switch()), ("-Name:", "Recorded1"), ("-CSVData:", csv),
                            ("-RemoteServer:", "imap.contoso.edu"), ("-Port:", 993), ("-WhatIf:", switch())):
            ps.add_parameter(name, value)
        assert not invoke(ps).had_errors, ps.streams.error
        step("proxied-new-migration-batch-terminate")
        ps.close()  # Signal terminate

        step("get-migration-config")
        ps = PowerShell(rp)
        ps.add_cmdlet("Get-MigrationConfig")
        assert len(invoke(ps).output) == 1

        step("unknown-command")
        ps = PowerShell(rp)
        ps.add_cmdlet("Get-Mailbox").add_parameter("Identity", "ann")
        assert invoke(ps).state == PSInvocationState.FAILED

        step("binding-error")
        ps = PowerShell(rp)
        ps.add_cmdlet("New-MigrationBatch").add_parameter("Name", "x").add_parameter("NoSuchParameter", 1)
        assert invoke(ps).state == PSInvocationState.FAILED

        step("not-found-error")
        ps = PowerShell(rp)
        ps.add_cmdlet("Get-MigrationBatch").add_parameter("Identity", "no-such-batch")
        invoke(ps)
        assert ps.state == PSInvocationState.COMPLETED and len(ps.streams.error) == 1

        step("script-refused")
        ps = PowerShell(rp)
        ps.add_script("Get-MigrationBatch | ForEach-Object { $_.Identity }")
        assert invoke(ps).state == PSInvocationState.FAILED
        step("script-refused-terminate")
        ps.close()

        step("receive-terminated-fault")
        try:
            rp.shell.receive("stdout", command_id=ps._command_id, timeout=2)
        except WSManFaultError:
            pass
        else:
            raise AssertionError("a Receive on a terminated pipeline should fault")
        step("close")


def record(output: Path) -> list[Exchange]:
    """Run the session against a fresh app and write the fixture set to ``output`` (replacing it)."""
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    from shim.app import create_app

    with tempfile.TemporaryDirectory(prefix="psrp-record-") as folder:
        app = create_app({"INSTANCE": str(Path(folder) / "instance"), **SETTINGS})
        try:
            app.extensions["mailshift_accounts"].set(ADMIN, PASSWORD)
            tape = Tape(app)
            server = make_server("127.0.0.1", 0, app, threaded=True)
            thread = threading.Thread(target=server.serve_forever, name="psrp-recorder", daemon=True)
            thread.start()
            try:
                run_session(server.server_port, tape)
            finally:
                server.shutdown()
                thread.join(10)
        finally:
            app.extensions["mailshift_service"].close()
    write(output, tape.exchanges, f"http://127.0.0.1:{server.server_port}")
    return tape.exchanges


def write(output: Path, exchanges: list[Exchange], base_url: str) -> None:
    """The XML files and ``index.json`` (old XML files in ``output`` are removed first)."""
    output.mkdir(parents=True, exist_ok=True)
    for old in output.glob("*.xml"):
        old.unlink()
    annotate = _Annotator()
    entries = []
    for number, exchange in enumerate(exchanges, 1):
        request = etree.fromstring(exchange.request)
        response = etree.fromstring(exchange.response)
        action = action_name(request)
        stem = f"{number:03d}-{exchange.step}-{action}"
        command_id = _target_of(request)
        entries.append({
            "seq": number, "step": exchange.step, "action": action, "command_id": command_id,
            "request": f"{stem}.request.xml", "response": f"{stem}.response.xml", "status": exchange.status,
            "response_action": action_name(response),
        })
        (output / f"{stem}.request.xml").write_bytes(_pretty(request, annotate, "request"))
        (output / f"{stem}.response.xml").write_bytes(_pretty(response, annotate, "response"))
    index = {
        "about": "A pypsrp session against the PSRP door, recorded by tests/servers/psrp_recorder.py; "
                 "replayed by tests/unit/test_psrp_recorded.py. See README.md.",
        "base_url": base_url,
        "user": ADMIN,
        "configuration": EXCHANGE,
        "exchanges": entries,
    }
    (output / "index.json").write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")


def _target_of(request: etree._Element) -> str | None:
    for tag in ("DesiredStream", "CommandLine", "Signal", "Stream"):
        element = next(request.iter(f"{{{NS_SHELL}}}{tag}"), None)
        if element is not None and element.get("CommandId"):
            return str(element.get("CommandId")).upper()
    return None


class _Annotator:
    """Readable comments for the base64 PSRP elements (one defragmenter per direction and target)."""

    def __init__(self) -> None:
        self._streams: dict[tuple[str, str | None], Defragmenter] = {}

    def __call__(self, direction: str, command_id: str | None, data: bytes) -> str:
        defragmenter = self._streams.setdefault((direction, command_id), Defragmenter())
        lines = []
        for fragment, message in defragmenter.feed(data):
            flags = "".join(f for f, on in ((" start", fragment.start), (" end", fragment.end)) if on)
            lines.append(f"PSRP fragment: object {fragment.object_id} #{fragment.fragment_id}{flags}, "
                         f"{len(fragment.data)} bytes")
            if message is not None:
                text = bytes(message.data).decode("utf-8", "replace")
                if len(text) > _COMMENT_DATA_CHARS:
                    text = text[:_COMMENT_DATA_CHARS] + f" ... ({len(text) - _COMMENT_DATA_CHARS} more characters)"
                pid = f" PID {message.pid}" if message.pid else ""
                lines.append(f"  message {message.message_type.name} (destination {message.destination}, "
                             f"RPID {message.rpid}{pid}):")
                lines.append(f"  {text}")
        body = "\n".join(lines)
        body = re.sub("-(?=-)", "- ", body)  # "--" is not allowed in a comment
        return f"\n{body.rstrip('-')}\n"


def _pretty(root: etree._Element, annotate: _Annotator, direction: str) -> bytes:
    for element, command_id, data in list(psrp_streams(root)):
        text = base64.b64encode(data).decode("ascii")
        element.text = "\n" + "\n".join(text[i:i + _WRAP] for i in range(0, len(text), _WRAP)) + "\n"
        element.addnext(etree.Comment(annotate(direction, command_id, data)))
    etree.indent(root, space="  ")  # whitespace between elements only: text (the base64) is kept as is
    return etree.tostring(root, xml_declaration=True, encoding="utf-8") + b"\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=FIXTURES, help="where to write the fixtures (default: %(default)s)")
    args = parser.parse_args(argv)
    exchanges = record(args.output)
    print(f"recorded {len(exchanges)} exchanges in {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
