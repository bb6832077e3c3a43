"""The action handlers with raw envelopes, straight through :class:`WinRSEndpoint` (no HTTP, no Flask)."""

from __future__ import annotations

import base64
import threading
import time

import flask
import pytest
from lxml import etree

from shim.errors import ObjectNotFound
from shim.host import ScriptOutcome
from shim.wsman import RequestContext, ScriptRunner, ShellRegistry, WinRSEndpoint, create_wsman_blueprint
from shim.wsman import constants as c

ALICE = RequestContext(user="alice", client_ip="127.0.0.1", address="http://mailshift/wsman")
NS = {"s": c.NS_SOAP, "a": c.NS_ADDRESSING, "w": c.NS_WSMAN, "rsp": c.NS_SHELL, "f": c.NS_WSMAN_FAULT}


def envelope(action: str, body: str = "", shell_id: str | None = None, headers: str = "", message_id: str = "uuid:M-1") -> bytes:
    selector = f'<w:SelectorSet><w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet>' if shell_id else ""
    return (
        f'<s:Envelope xmlns:s="{c.NS_SOAP}" xmlns:a="{c.NS_ADDRESSING}" xmlns:w="{c.NS_WSMAN}" xmlns:rsp="{c.NS_SHELL}">'
        f"<s:Header><a:Action>{action}</a:Action><a:MessageID>{message_id}</a:MessageID>"
        f"<w:ResourceURI>{c.RESOURCE_URI_CMD}</w:ResourceURI>{selector}{headers}</s:Header>"
        f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def xml(data: bytes) -> etree._Element:
    return etree.fromstring(data)


def fault_code(data: bytes) -> int:
    detail = xml(data).find("s:Body/s:Fault/s:Detail/f:WSManFault", NS)
    assert detail is not None
    return int(detail.get("Code", "0"))


class Door:
    """An endpoint whose runner echoes the script (or raises ``raise_error``), unless another runner is given."""

    def __init__(self, runner: ScriptRunner | None = None) -> None:
        self.scripts: list[str] = []
        self.endpoint = WinRSEndpoint(runner or self.run, ShellRegistry(), machine="test-host")
        self.raise_error: Exception | None = None

    def run(self, script: str, user: str) -> ScriptOutcome:
        self.scripts.append(script)
        if self.raise_error is not None:
            raise self.raise_error
        return ScriptOutcome(stdout=f"ran {script}\n")

    def ok(self, data: bytes, context: RequestContext = ALICE) -> etree._Element:
        status, body = self.endpoint.handle(data, context)
        assert status == 200, body
        return xml(body)

    def create(self, options: str = "") -> str:
        root = self.ok(envelope(c.ACTION_CREATE, "<rsp:Shell/>", headers=options))
        return str(root.findtext("s:Body/rsp:Shell/rsp:ShellId", namespaces=NS))

    def command(self, shell_id: str, command: str) -> str:
        body = f"<rsp:CommandLine><rsp:Command>{command}</rsp:Command></rsp:CommandLine>"
        return str(self.ok(envelope(c.ACTION_COMMAND, body, shell_id)).findtext(".//rsp:CommandId", namespaces=NS))

    def receive(self, shell_id: str, command_id: str, headers: str = "") -> tuple[int, bytes]:
        body = f'<rsp:Receive><rsp:DesiredStream CommandId="{command_id}">stdout stderr</rsp:DesiredStream></rsp:Receive>'
        return self.endpoint.handle(envelope(c.ACTION_RECEIVE, body, shell_id, headers), ALICE)


def streams(root: etree._Element, name: str) -> bytes:
    return b"".join(base64.b64decode(s.text) for s in root.iterfind(f".//rsp:Stream[@Name='{name}']", NS) if s.text)


def test_every_response_relates_to_the_request_and_has_a_new_message_id() -> None:
    door = Door()
    status, body = door.endpoint.handle(envelope(c.ACTION_CREATE, "<rsp:Shell/>", message_id="uuid:abc-DEF"), ALICE)
    root = xml(body)
    assert status == 200
    assert root.findtext("s:Header/a:RelatesTo", namespaces=NS) == "uuid:abc-DEF"
    assert root.findtext("s:Header/a:Action", namespaces=NS) == c.ACTION_CREATE_RESPONSE
    assert (root.findtext("s:Header/a:MessageID", namespaces=NS) or "").startswith("uuid:")
    assert root.findtext(".//rsp:Shell/rsp:Owner", namespaces=NS) == "alice"
    assert root.findtext(".//x:ResourceCreated/a:Address", namespaces={**NS, "x": c.NS_TRANSFER}) == ALICE.address


def test_ctrl_c_ends_a_running_command() -> None:
    gate = threading.Event()

    def slow(script: str, user: str) -> ScriptOutcome:
        gate.wait(5)
        return ScriptOutcome("never seen\n")

    door = Door(slow)
    shell_id = door.create()
    command_id = door.command(shell_id, "Get-Slow")
    signal = f'<rsp:Signal CommandId="{command_id}"><rsp:Code>{c.SIGNAL_CTRL_C}</rsp:Code></rsp:Signal>'
    assert door.ok(envelope(c.ACTION_SIGNAL, signal, shell_id)).find(".//rsp:SignalResponse", NS) is not None
    status, body = door.receive(shell_id, command_id)
    assert status == 200
    assert xml(body).findtext(".//rsp:ExitCode", namespaces=NS) == str(c.EXIT_CODE_CTRL_C)
    gate.set()


def test_unknown_signal_send_to_unknown_command_and_missing_selector() -> None:
    door = Door()
    shell_id = door.create()
    command_id = door.command(shell_id, "Get-Date")
    bad_signal = f'<rsp:Signal CommandId="{command_id}"><rsp:Code>urn:nope</rsp:Code></rsp:Signal>'
    assert fault_code(door.endpoint.handle(envelope(c.ACTION_SIGNAL, bad_signal, shell_id), ALICE)[1]) == c.FaultCode.INVALID_SOAP_BODY
    send = '<rsp:Send><rsp:Stream Name="stdin" CommandId="NOPE" End="true">eQ==</rsp:Stream></rsp:Send>'
    assert fault_code(door.endpoint.handle(envelope(c.ACTION_SEND, send, shell_id), ALICE)[1]) == c.FaultCode.INVALID_SELECTORS
    send_ok = send.replace("NOPE", command_id)
    assert door.ok(envelope(c.ACTION_SEND, send_ok, shell_id)).find(".//rsp:SendResponse", NS) is not None
    status, body = door.endpoint.handle(envelope(c.ACTION_DELETE), ALICE)
    assert (status, fault_code(body)) == (500, c.FaultCode.INVALID_SELECTORS)
    status, body = door.endpoint.handle(envelope(c.ACTION_COMMAND, "", shell_id), ALICE)
    assert (status, fault_code(body)) == (500, c.FaultCode.INVALID_SOAP_BODY)


def test_receive_with_a_tiny_max_envelope_size_is_refused() -> None:
    door = Door()
    shell_id = door.create()
    command_id = door.command(shell_id, "Get-Date")
    status, body = door.receive(shell_id, command_id, headers="<w:MaxEnvelopeSize>800</w:MaxEnvelopeSize>")
    assert (status, fault_code(body)) == (500, c.FaultCode.MIN_ENVELOPE_SIZE)


def test_receive_waits_at_most_the_operation_timeout() -> None:
    gate = threading.Event()

    def slow(script: str, user: str) -> ScriptOutcome:
        gate.wait(5)
        return ScriptOutcome("")

    door = Door(slow)
    shell_id = door.create()
    command_id = door.command(shell_id, "Get-Slow")
    started = time.monotonic()
    status, body = door.receive(shell_id, command_id, headers="<w:OperationTimeout>PT0.5S</w:OperationTimeout>")
    assert 0.2 <= time.monotonic() - started < 0.6
    assert (status, fault_code(body)) == (500, c.FaultCode.OPERATION_TIMED_OUT)
    assert xml(body).findtext("s:Body/s:Fault/s:Code/s:Value", namespaces=NS) == "s:Receiver"
    assert xml(body).find("s:Body/s:Fault/s:Detail/f:WSManFault", NS).get("Machine") == "test-host"  # type: ignore[union-attr]
    gate.set()


def test_codepage_option_must_be_a_number() -> None:
    door = Door()
    options = '<w:OptionSet><w:Option Name="WINRS_CODEPAGE">utf8</w:Option></w:OptionSet>'
    status, body = door.endpoint.handle(envelope(c.ACTION_CREATE, "<rsp:Shell/>", headers=options), ALICE)
    assert (status, fault_code(body)) == (500, c.FaultCode.INVALID_OPTION_VALUE)


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (ObjectNotFound("The operation couldn't be performed because object 'b9' couldn't be found."), "object 'b9' couldn't be found"),
        (RuntimeError("secret internals"), "internal error"),
    ],
)
def test_runner_exceptions_reach_the_client_as_errors(error: Exception, text: str) -> None:
    door = Door()
    door.raise_error = error
    shell_id = door.create()
    command_id = door.command(shell_id, "Get-MigrationBatch b9")
    status, body = door.receive(shell_id, command_id)
    assert status == 200
    stderr = streams(xml(body), "stderr").decode()
    assert stderr.startswith("#< CLIXML\r\n") and text in stderr
    assert "secret internals" not in stderr
    assert xml(body).findtext(".//rsp:ExitCode", namespaces=NS) == "1"


def test_bad_encoded_command_is_an_error_without_running_anything() -> None:
    door = Door()
    shell_id = door.create()
    command_id = door.command(shell_id, "powershell -EncodedCommand %%%")
    status, body = door.receive(shell_id, command_id)
    assert "EncodedCommand" in streams(xml(body), "stderr").decode()
    assert door.scripts == []


def test_request_larger_than_the_limit_is_refused() -> None:
    door = Door()
    status, body = door.endpoint.handle(b" " * (c.MAX_REQUEST_BYTES + 1), ALICE)
    assert (status, fault_code(body)) == (413, c.FaultCode.ENVELOPE_TOO_LARGE)


def test_blueprint_refuses_requests_the_auth_layer_did_not_authenticate() -> None:
    app = flask.Flask(__name__)
    app.register_blueprint(create_wsman_blueprint(lambda script, user: ScriptOutcome("")))
    response = app.test_client().post("/wsman", data=envelope(c.ACTION_CREATE, "<rsp:Shell/>"))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="WSMAN"'
    assert app.test_client().get("/wsman").status_code == 405


def test_blueprint_does_not_read_an_oversized_body() -> None:
    app = flask.Flask(__name__)

    @app.before_request
    def authenticate() -> None:
        flask.g.mailshift_user = "alice"

    app.register_blueprint(create_wsman_blueprint(lambda script, user: ScriptOutcome("")))
    response = app.test_client().post("/wsman", data=b"<" * (c.MAX_REQUEST_BYTES + 1))
    assert (response.status_code, fault_code(response.data)) == (413, c.FaultCode.ENVELOPE_TOO_LARGE)
    assert response.content_type == c.CONTENT_TYPE


def test_blueprint_rejects_unusable_settings() -> None:
    with pytest.raises(ValueError):
        create_wsman_blueprint(lambda script, user: ScriptOutcome(""), max_shells_per_user=0)
