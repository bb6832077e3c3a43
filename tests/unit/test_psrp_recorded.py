"""Replay of the recorded PSRP session (``tests/fixtures/psrp/``) against the door, compared semantically.

The recorded requests go, in order, to the Flask app's WS-Management endpoint in-process (test
client, Basic auth, no network). Each response is compared with the recorded one after
normalising what legitimately varies:

* the envelope: ``a:MessageID`` (any ``uuid:`` GUID), ``a:RelatesTo`` (must name the request
  just sent), ShellId and CommandIds (recorded and live ones both mapped to ``{shell}`` and
  ``{command-N}``, N in the order of the Command requests), other GUIDs, timestamps, the fault's
  ``Machine``; base64 streams are not compared as text, and the number of ``rsp:Stream`` elements
  per ReceiveResponse (how the output was split) and the intermediate CommandState are ignored;
* the PSRP data: each target's (the pool's, each pipeline's) fragments are concatenated across
  all its Receives, defragmented into messages and each message's CLIXML turned into plain
  values: type names resolved through ``TNRef``, ``Ref`` resolved, RefIds dropped, GUIDs mapped
  in order of appearance, ``<DT>`` timestamps blanked. The message types, their order and every
  value (the metadata's cmdlet names and parameters, output objects' type names and properties
  in order, ErrorRecords' category and FullyQualifiedErrorId, pipeline states) must match.

Receives are replayed as recorded, except that one the live pipeline no longer needs (it is
Done already) is skipped, and more are sent after the last recorded one while the live
pipeline is not Done: the door may split output differently without failing the test.
"""

from __future__ import annotations

import base64
import difflib
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient
from lxml import etree

from shim.app import create_app
from shim.errors import ShimError
from shim.psrp.values import error_record
from tests.servers.psrp_recorder import (
    ADMIN,
    FIXTURES,
    NS_ADDRESSING,
    NS_SHELL,
    NS_SOAP,
    PASSWORD,
    SETTINGS,
    Defragmenter,
    action_name,
    psrp_streams,
)

_A = f"{{{NS_ADDRESSING}}}"
_S = f"{{{NS_SOAP}}}"
_RSP = f"{{{NS_SHELL}}}"
_WSMAN = "{http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd}"
_NS_CLIXML = "{http://schemas.microsoft.com/powershell/2004/04}"
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?")
_MESSAGE_ID = re.compile(r"uuid:[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}")
_DONE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"
_PARSER = etree.XMLParser(remove_comments=True, remove_blank_text=True, resolve_entities=False, no_network=True)
_POOL = "{pool}"
_MAX_DIFFERENCES = 25
#: How long Receives are repeated for a live pipeline that is not Done after the last recorded Receive.
_PUMP_SECONDS = 5.0


# --- what one side (recorded or live) of the session looks like ------------------------------------


@dataclass
class Side:
    """The ids one side used and the PSRP data its responses carried, per target (pool or pipeline)."""

    shell_id: str | None = None
    #: CommandId (upper case) -> ``{command-N}``.
    commands: dict[str, str] = field(default_factory=dict)
    streams: dict[str, Defragmenter] = field(default_factory=dict)
    messages: dict[str, list[Any]] = field(default_factory=dict)
    #: CommandState of each 200 ReceiveResponse, per target.
    states: dict[str, list[str]] = field(default_factory=dict)
    #: Shapes of the ``rsp:Stream`` elements seen, per target.
    stream_shapes: dict[str, set[tuple[Any, ...]]] = field(default_factory=dict)

    def token(self, value: str) -> str | None:
        """``{shell}`` or ``{command-N}`` for a known id (any case), else None."""
        key = value.upper()
        if self.shell_id is not None and key == self.shell_id:
            return "{shell}"
        return self.commands.get(key)

    def target(self, command_id: str | None) -> str:
        return _POOL if command_id is None else self.token(command_id) or f"{{unknown {command_id}}}"

    def text(self, value: str) -> str:
        """Known ids as tokens, other GUIDs as ``{uuid}``, timestamps as ``{datetime}``."""
        value = _UUID.sub(lambda m: self.token(m.group(0)) or "{uuid}", value)
        return _DATETIME.sub("{datetime}", value)

    def take_response(self, root: etree._Element, command_id: str | None) -> None:
        """Collect a ReceiveResponse's PSRP fragments, stream shapes and state."""
        for element, stream_command, data in psrp_streams(root):
            target = self.target(stream_command or command_id)
            for _, message in self.streams.setdefault(target, Defragmenter()).feed(data):
                if message is not None:
                    self.messages.setdefault(target, []).append(message)
            self.stream_shapes.setdefault(target, set()).add(
                tuple(sorted((str(k), self.text(str(v))) for k, v in element.attrib.items())))
        for state in root.iter(f"{_RSP}CommandState"):
            self.states.setdefault(self.target(command_id), []).append(state.get("State") or "")

    def canonical_messages(self, target: str) -> list[dict[str, Any]]:
        guids = _Guids(self)
        return [{
            "type": m.message_type.name,
            "destination": m.destination,
            "rpid": guids(str(m.rpid)),
            "pid": None if m.pid is None else guids(str(m.pid)),
            "data": _clixml(bytes(m.data), guids),
        } for m in self.messages.get(target, [])]


class _Guids:
    """GUIDs of one target's messages: known ids as tokens, the others numbered in order of appearance."""

    def __init__(self, side: Side) -> None:
        self._side = side
        self._seen: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        known = self._side.token(value)
        if known is not None:
            return known
        if uuid.UUID(value).int == 0:
            return "{empty-guid}"
        return self._seen.setdefault(value.upper(), f"{{guid-{len(self._seen) + 1}}}")

    def text(self, value: str) -> str:
        return _DATETIME.sub("{datetime}", _UUID.sub(lambda m: self(m.group(0)), value))


# --- CLIXML as plain values -------------------------------------------------------------------------


def _clixml(data: bytes, guids: _Guids) -> Any:
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError:
        return {"raw": guids.text(data.decode("utf-8", "replace"))}
    return _Clixml(guids).value(root)


class _Clixml:
    def __init__(self, guids: _Guids) -> None:
        self._guids = guids
        self._type_names: dict[str, list[str]] = {}
        self._objects: dict[str, Any] = {}

    def value(self, element: etree._Element) -> Any:
        tag = etree.QName(element).localname
        text = element.text or ""
        if tag == "Obj":
            return self._object(element)
        if tag == "Ref":
            return self._objects.get(element.get("RefId") or "", "{dangling Ref}")
        if tag == "Nil":
            return None
        if tag == "G":
            return "G:" + self._guids(text.strip())
        if tag == "DT":
            return "DT:{datetime}"
        return f"{tag}:{self._guids.text(text)}"

    def _object(self, element: etree._Element) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for child in element:
            name = etree.QName(child).localname
            if name == "TN":
                out["types"] = [t.text or "" for t in child]
                self._type_names[child.get("RefId") or ""] = out["types"]
            elif name == "TNRef":
                out["types"] = self._type_names.get(child.get("RefId") or "", ["{dangling TNRef}"])
            elif name == "ToString":
                out["ToString"] = self._guids.text(child.text or "")
            elif name in ("Props", "MS"):
                members = {child_name(c, i): self.value(c) for i, c in enumerate(child)}
                out[name] = members
                out[f"{name} order"] = list(members)
            elif name in ("LST", "IE", "STK", "QUE"):
                out[name] = [self.value(c) for c in child]
            elif name == "DCT":
                entries: dict[str, Any] = {}
                for entry in child:
                    key = value = None
                    for part in entry:
                        if part.get("N") == "Key":
                            key = self.value(part)
                        elif part.get("N") == "Value":
                            value = self.value(part)
                    entries[json.dumps(key, sort_keys=True)] = value
                out["DCT"] = entries
            else:
                out["value"] = self.value(child)
        ref_id = element.get("RefId")
        if ref_id is not None:
            self._objects[ref_id] = out
        return out


def child_name(element: etree._Element, index: int) -> str:
    return element.get("N") or f"#{index}"


# --- envelopes ----------------------------------------------------------------------------------------


_PREFIXES = {NS_SOAP: "s", NS_ADDRESSING: "a", NS_SHELL: "rsp", "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd": "w",
             "http://schemas.xmlsoap.org/ws/2004/09/transfer": "x", "http://www.w3.org/XML/1998/namespace": "xml",
             "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault": "f"}


def _prefixed(name: str) -> str:
    qname = etree.QName(name)
    prefix = _PREFIXES.get(qname.namespace or "")
    if qname.namespace and prefix is None:
        return name
    return f"{prefix}:{qname.localname}" if prefix else qname.localname


def _shape(element: etree._Element, side: Side, request_message_id: str, path: str = "") -> list[str]:
    """An envelope as one line per element and attribute (``/s:Envelope/s:Body/... = text``), normalised as the
    module doc says; ``rsp:Stream`` elements are left out (compared per target instead)."""
    tag = str(element.tag)
    here = f"{path}/{_prefixed(tag)}"
    text = (element.text or "").strip()
    if tag == f"{_A}MessageID":
        text = "{message-id}" if _MESSAGE_ID.fullmatch(text) else text
    elif tag == f"{_A}RelatesTo":
        text = "{the request's MessageID}" if text == request_message_id else text
    else:
        text = side.text(text)
    lines = [f"{here} = {text}" if text else here]
    for name, value in sorted(element.attrib.items()):
        if name == "Machine":
            value = "{machine}"
        elif name == "State" and tag == f"{_RSP}CommandState":
            value = "{state}"
        lines.append(f"{here}/@{_prefixed(str(name))} = {side.text(str(value))}")
    for child in element:
        if isinstance(child.tag, str) and child.tag != f"{_RSP}Stream":
            lines += _shape(child, side, request_message_id, here)
    return lines


@dataclass
class Recorded:
    seq: int
    step: str
    request: bytes
    root: etree._Element
    status: int
    response: etree._Element

    @property
    def action(self) -> str:
        return action_name(self.root)

    @property
    def command_id(self) -> str | None:
        for tag in ("DesiredStream", "CommandLine", "Signal", "Stream"):
            element = next(self.root.iter(f"{_RSP}{tag}"), None)
            if element is not None and element.get("CommandId"):
                return str(element.get("CommandId")).upper()
        return None

    @property
    def message_id(self) -> str:
        return (self.root.findtext(f"{_S}Header/{_A}MessageID") or "").strip()

    def label(self) -> str:
        return f"exchange {self.seq:03d} ({self.step} {self.action})"


def load_fixtures(folder: Path = FIXTURES) -> tuple[dict[str, Any], list[Recorded]]:
    index = json.loads((folder / "index.json").read_text("utf-8"))
    out = []
    for entry in index["exchanges"]:
        request = (folder / entry["request"]).read_bytes()
        out.append(Recorded(entry["seq"], entry["step"], request, etree.fromstring(request, _PARSER),
                            entry["status"], etree.fromstring((folder / entry["response"]).read_bytes(), _PARSER)))
    return index, out


# --- the replay ---------------------------------------------------------------------------------------


class Replay:
    """Sends the recorded requests to a live app and collects both sides."""

    def __init__(self, client: FlaskClient, index: dict[str, Any], exchanges: list[Recorded], *,
                 max_envelope: int | None = None) -> None:
        self.client = client
        #: When set, every request's MaxEnvelopeSize is replaced (the door then fragments and splits differently).
        self.max_envelope = max_envelope
        self.base_url = index["base_url"]
        self.auth = "Basic " + base64.b64encode(f"{ADMIN}:{PASSWORD}".encode()).decode()
        self.exchanges = exchanges
        self.recorded = Side()
        self.live = Side()
        #: (label, recorded shape, live shape) of every response compared one to one.
        self.shapes: list[tuple[str, Any, Any]] = []
        self.skipped: list[str] = []
        self.extra_receives = 0
        #: What went wrong beyond a different response (HTTP status, unreadable reply, a pipeline never Done).
        self.problems: list[str] = []
        self._id_map: dict[str, str] = {}

    def run(self) -> None:
        self._collect_recorded()
        last_receive = {self._recorded_target(e): e.seq for e in self.exchanges
                        if e.action == "Receive" and e.status == 200}
        for exchange in self.exchanges:
            target = self._recorded_target(exchange)
            if exchange.action == "Receive" and exchange.status == 200 and self._complete(target):
                self.skipped.append(exchange.label())
                continue
            self._send(exchange, self._remap(exchange.request), compare=True)
            if last_receive.get(target) == exchange.seq:
                deadline = time.monotonic() + _PUMP_SECONDS
                while not self._complete(target):
                    if time.monotonic() > deadline:
                        self.problems.append(f"{exchange.label()}: the live {target} did not finish "
                                             f"within {_PUMP_SECONDS} s of Receives")
                        break
                    self._send(exchange, self._fresh_message_id(self._remap(exchange.request)), compare=False)
                    self.extra_receives += 1

    def _collect_recorded(self) -> None:
        """The recorded side's ids and PSRP data, from the recorded files alone."""
        for exchange in self.exchanges:
            self._learn_ids(self.recorded, exchange.root, exchange.response)
            if exchange.action == "Receive" and exchange.status == 200:
                self.recorded.take_response(exchange.response, exchange.command_id)

    def _recorded_target(self, exchange: Recorded) -> str:
        command_id = exchange.command_id
        return _POOL if command_id is None else self.recorded.target(command_id)

    def _complete(self, target: str) -> bool:
        """The live side has all it will send for ``target``: Done for a pipeline, the recorded count for the pool."""
        if target == _POOL:
            return len(self.live.messages.get(_POOL, [])) >= len(self.recorded.messages.get(_POOL, []))
        return bool(self.live.states.get(target)) and self.live.states[target][-1] == _DONE

    @staticmethod
    def _learn_ids(side: Side, request: etree._Element, response: etree._Element) -> None:
        """The ShellId from a CreateResponse; a CommandId from the Command request (PSRP clients choose it, the
        CommandResponse echoes it: a response that does not is caught by the shape comparison)."""
        action = action_name(request)
        if action == "Create" and side.shell_id is None:
            found = response.findtext(f".//{_RSP}Shell/{_RSP}ShellId") or ""
            if not found.strip():
                shell = next(request.iter(f"{_RSP}Shell"), None)
                found = (shell.get("ShellId") if shell is not None else None) or ""
            side.shell_id = found.strip().upper() or None
        elif action == "Command":
            line = next(request.iter(f"{_RSP}CommandLine"), None)
            found = str((line.get("CommandId") if line is not None else None) or "").strip().upper()
            if found and found not in side.commands:
                side.commands[found] = f"{{command-{len(side.commands) + 1}}}"

    def _remap(self, request: bytes) -> bytes:
        """The recorded ShellId and CommandIds replaced by the live ones (the door echoes the client's, so
        usually nothing changes); the MaxEnvelopeSize replaced when asked."""
        for recorded, live in self._id_map.items():
            if recorded != live:
                request = request.replace(recorded.encode(), live.encode()).replace(
                    recorded.lower().encode(), live.lower().encode())
        if self.max_envelope is not None:
            root = etree.fromstring(request, _PARSER)
            for element in root.iter(f"{_WSMAN}MaxEnvelopeSize"):
                element.text = str(self.max_envelope)
            request = etree.tostring(root)
        return request

    @staticmethod
    def _fresh_message_id(request: bytes) -> bytes:
        root = etree.fromstring(request, _PARSER)
        element = root.find(f"{_S}Header/{_A}MessageID")
        assert element is not None
        element.text = f"uuid:{str(uuid.uuid4()).upper()}"
        return etree.tostring(root)

    def _send(self, exchange: Recorded, request: bytes, *, compare: bool) -> None:
        root = etree.fromstring(request, _PARSER)
        path = urlsplit(root.findtext(f"{_S}Header/{_A}To") or "/powershell").path or "/powershell"
        answer = self.client.post(path, data=request, base_url=self.base_url, headers={
            "Authorization": self.auth, "Content-Type": "application/soap+xml;charset=UTF-8"})
        if answer.status_code != exchange.status:
            self.problems.append(f"{exchange.label()}: HTTP {answer.status_code}, recorded {exchange.status}: "
                                 f"{answer.data[:500]!r}")
        try:
            response = etree.fromstring(answer.data, _PARSER)
        except etree.XMLSyntaxError:
            self.problems.append(f"{exchange.label()}: the reply is not XML: {answer.data[:500]!r}")
            return
        message_id = (root.findtext(f"{_S}Header/{_A}MessageID") or "").strip()
        self._learn_ids(self.live, root, response)
        self._map_ids(exchange, response)
        if exchange.action == "Receive" and answer.status_code == 200:
            self.live.take_response(response, self._live_command_id(exchange))
        if compare:
            self.shapes.append((exchange.label(), _shape(exchange.response, self.recorded, exchange.message_id),
                                _shape(response, self.live, message_id)))

    def _map_ids(self, exchange: Recorded, response: etree._Element) -> None:
        if exchange.action == "Create":
            recorded = (exchange.response.findtext(f".//{_RSP}Shell/{_RSP}ShellId") or "").strip().upper()
            live = (response.findtext(f".//{_RSP}Shell/{_RSP}ShellId") or "").strip().upper()
        elif exchange.action == "Command":
            recorded = (exchange.response.findtext(f".//{_RSP}CommandId") or "").strip().upper()
            live = (response.findtext(f".//{_RSP}CommandId") or "").strip().upper()
        else:
            return
        if recorded and live:
            self._id_map[recorded] = live

    def _live_command_id(self, exchange: Recorded) -> str | None:
        command_id = exchange.command_id
        return None if command_id is None else self._id_map.get(command_id, command_id)


# --- comparing ------------------------------------------------------------------------------------------


def differences(recorded: Any, live: Any, path: str = "") -> Iterator[str]:
    """Where two normalised values differ, as ``path: recorded != live`` lines."""
    if type(recorded) is not type(live):
        yield f"{path}: {_short(recorded)} != {_short(live)}"
    elif isinstance(recorded, dict):
        for key in recorded.keys() | live.keys():
            if key not in live:
                yield f"{path}[{key}]: missing (recorded {_short(recorded[key])})"
            elif key not in recorded:
                yield f"{path}[{key}]: unexpected (live {_short(live[key])})"
            else:
                yield from differences(recorded[key], live[key], f"{path}[{key}]")
    elif isinstance(recorded, (list, tuple)):
        if len(recorded) != len(live):
            yield f"{path}: {len(recorded)} items recorded, {len(live)} live"
        for number, (a, b) in enumerate(zip(recorded, live)):
            yield from differences(a, b, f"{path}[{number}]")
    elif recorded != live:
        yield f"{path}: {_short(recorded)} != {_short(live)}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 300 else text[:300] + "..."


def _report(found: list[str]) -> str:
    shown = found[:_MAX_DIFFERENCES]
    more = f"\n... and {len(found) - len(shown)} more" if len(found) > len(shown) else ""
    return "\n".join(shown) + more


def replay_session(folder: Path, *, max_envelope: int | None = None) -> Replay:
    """Replay the fixtures against a fresh app on an instance in ``folder``."""
    index, exchanges = load_fixtures()
    app = create_app({"INSTANCE": str(folder / "instance"), **SETTINGS})
    try:
        app.extensions["mailshift_accounts"].set(ADMIN, PASSWORD)
        session = Replay(app.test_client(), index, exchanges, max_envelope=max_envelope)
        session.run()
        return session
    finally:
        app.extensions["mailshift_service"].close()


def mismatches(session: Replay) -> list[str]:
    """Every difference between the recorded and the live side: problems, envelope shapes, PSRP messages per target."""
    found = list(session.problems)
    for label, recorded, live in session.shapes:
        if recorded != live:
            found += [f"{label}: {'recorded' if line[0] == '-' else 'live    '} {line[2:]}"
                      for line in difflib.ndiff(recorded, live) if line[:1] in "+-"]
    steps = {session.recorded.target(e.command_id): e.step for e in session.exchanges if e.action == "Command"}
    steps[_POOL] = "runspace pool"
    for target in session.recorded.messages.keys() | session.live.messages.keys():
        recorded = session.recorded.canonical_messages(target)
        live = session.live.canonical_messages(target)
        where = f"{steps.get(target, target)} {target}:"
        found += [f"{where}{line}" for line in differences([m["type"] for m in recorded], [m["type"] for m in live],
                                                           " message types")]
        found += [f"{where}{line}" for line in differences(recorded, live, " messages")]
    return found


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Replay:
    return replay_session(tmp_path_factory.mktemp("psrp-recorded"))


def test_the_fixture_set_covers_the_session() -> None:
    index, exchanges = load_fixtures()
    assert [e["seq"] for e in index["exchanges"]] == list(range(1, len(exchanges) + 1))
    steps = {e.step for e in exchanges}
    assert {"open", "command-metadata", "format-data-measure", "format-data", "proxied-new-migration-batch",
            "get-migration-config", "unknown-command", "binding-error", "script-refused", "close"} <= steps
    assert [e.action for e in exchanges][:2] == ["Create", "Receive"] and exchanges[-1].action == "Delete"
    assert any(e.status == 500 for e in exchanges)  # a WS-Management fault is recorded too
    for exchange in exchanges:  # requests carry no credentials: only envelopes are kept
        assert PASSWORD.encode() not in exchange.request


def test_the_replay_matches_the_recording(replay: Replay) -> None:
    assert len(replay.recorded.messages) == 1 + sum(e.action == "Command" for e in replay.exchanges)
    found = mismatches(replay)
    assert not found, "the door's answers differ from the recording:\n" + _report(found)
    for target, defragmenter in (*replay.recorded.streams.items(), *replay.live.streams.items()):
        assert defragmenter.pending == 0, f"{target}: a PSRP message was left unfinished"


def test_output_split_differently_still_matches(tmp_path: Path) -> None:
    """Under a small MaxEnvelopeSize the door cuts messages into many fragments over many Receives."""
    session = replay_session(tmp_path, max_envelope=8192)
    assert session.extra_receives > 10
    found = mismatches(session)
    assert not found, "the door's answers differ from the recording:\n" + _report(found)


def test_pipelines_end_done_with_the_recorded_stream_elements(replay: Replay) -> None:
    for target, states in replay.recorded.states.items():
        live = replay.live.states.get(target, [])
        assert live and live[-1] == states[-1] == _DONE, (target, states, live)
        assert all(s != _DONE for s in live[:-1]), (target, live)
    assert replay.live.stream_shapes == replay.recorded.stream_shapes


def test_key_contents_as_import_pssession_sees_them(replay: Replay) -> None:
    """A few named checks on the recording itself, so a re-recording that lost something is noticed."""
    by_step = {e.step: replay.recorded.target(e.command_id) for e in replay.exchanges if e.action == "Command"}
    messages = {step: replay.recorded.canonical_messages(target) for step, target in by_step.items()}

    def outputs(step: str) -> list[Any]:
        return [m["data"] for m in messages[step] if m["type"] == "PipelineOutput"]

    def final_state(step: str) -> dict[str, Any]:
        states = [m["data"] for m in messages[step] if m["type"] == "PipelineState"]
        return states[-1]["MS"]  # type: ignore[no-any-return]

    metadata = outputs("command-metadata")
    assert metadata[0]["MS"]["Count"] == f"I32:{len(metadata) - 1}"
    batch = next(m for m in metadata[1:] if m["MS"]["Name"] == "S:New-MigrationBatch")
    parameters = batch["MS"]["Parameters"]["DCT"]
    assert parameters['"S:CSVData"']["Props"]["ParameterType"] == "S:System.Byte[]"
    assert parameters['"S:AutoStart"']["Props"]["SwitchParameter"] == "B:true"
    [measured] = outputs("format-data-measure")
    assert measured["Props"]["Count"] == "I32:0"
    assert outputs("format-data") == []
    assert outputs("proxied-new-migration-batch") == [
        'S:What if: Performing the operation "Creating migration batch" on target "Recorded1".']
    [config] = outputs("get-migration-config")
    assert config["types"][0] == "Microsoft.Exchange.Data.Storage.Management.MigrationConfig"
    assert config["Props"]["MaxNumberOfBatches"] == "I32:100"
    for step, fqid in (("unknown-command", "S:CommandNotFoundException,Get-Mailbox"),
                       ("binding-error", "S:NamedParameterNotFound,New-MigrationBatch"),
                       ("script-refused", "S:ScriptsNotAllowed")):
        state = final_state(step)
        assert state["PipelineState"] == "I32:5"  # Failed
        assert state["ExceptionAsErrorRecord"]["MS"]["FullyQualifiedErrorId"] == fqid, step
    [record] = [m["data"] for m in messages["not-found-error"] if m["type"] == "ErrorRecord"]
    assert record["MS"]["FullyQualifiedErrorId"] == "S:ManagementObjectNotFoundException,Get-MigrationBatch"
    assert final_state("not-found-error")["PipelineState"] == "I32:4"  # Completed
    assert record["MS"]["ErrorCategory_Category"] == "I32:13"  # ObjectNotFound
    types = record["MS"]["Exception"]["types"]
    assert types[0] == "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException"
    assert len(types) == len(set(types))



@pytest.mark.parametrize("error_id", ["ManagementObjectNotFoundException", "ManagementObjectAlreadyExistsException",
                                      "CommandNotFoundException", "ScriptsNotAllowed", "NamedParameterNotFound"])
def test_error_records_name_each_exception_type_once(error_id: str) -> None:
    """Found by this recording: Exchange's exception chains ended in System.Exception twice."""
    record = error_record(ShimError("The migration batch 'x' can't be found.", error_id=error_id))
    names = record.Exception.PSObject.type_names
    assert len(names) == len(set(names)) and names[-2:] == ["System.Exception", "System.Object"]
