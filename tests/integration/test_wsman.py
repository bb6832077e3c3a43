"""The WinRS door against the real pywinrm 0.5 client, over real HTTP served by waitress.

Each test starts a tiny Flask app (Basic auth in ``before_request``, as the service's auth
layer will do it) with the WinRS blueprint and a fake script runner, serves it with waitress
on a free loopback port, and drives it with ``winrm.Session`` / ``winrm.protocol.Protocol``,
or with raw ``requests`` posts for what pywinrm never sends.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import flask
import pytest
import requests
import waitress
import winrm
from lxml import etree
from waitress.server import BaseWSGIServer, MultiSocketServer
from winrm.exceptions import InvalidCredentialsError, WSManFaultError
from winrm.protocol import Protocol

from shim.host import ScriptOutcome
from shim.wsman import create_wsman_blueprint
from shim.wsman import constants as c

USERS = {"alice": "alice-secret", "bob": "bob-secret"}

#: Keep pywinrm from reading proxies and CA bundles from the environment (and warning about it).
CLIENT_OPTIONS: dict[str, Any] = {"proxy": None, "ca_trust_path": None}

Runner = Callable[[str, str], ScriptOutcome]


def upper_runner(script: str, user: str) -> ScriptOutcome:
    """Echo the script upper-cased: proves what text reached the runner."""
    return ScriptOutcome(stdout=script.upper() + "\n")


@dataclass
class Recorder:
    """A runner that records its calls and answers with a fixed outcome."""

    outcome: ScriptOutcome = field(default_factory=lambda: ScriptOutcome(stdout="ok\n"))
    delay: float = 0.0
    calls: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, script: str, user: str) -> ScriptOutcome:
        self.calls.append((script, user))
        if self.delay:
            time.sleep(self.delay)
        return self.outcome


@dataclass
class Exchange:
    """One HTTP exchange as the server saw it."""

    action: str
    status: int
    size: int
    body: bytes


@dataclass
class Server:
    """A running test server: its base URL and every exchange it answered."""

    base: str
    exchanges: list[Exchange]

    @property
    def url(self) -> str:
        return f"{self.base}/wsman"

    def actions(self, action: str, status: int | None = None) -> list[Exchange]:
        return [e for e in self.exchanges if e.action == action and (status is None or e.status == status)]


def _request_action(data: bytes) -> str:
    try:
        root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))
    except etree.XMLSyntaxError:
        return ""
    return (root.findtext(f".//{{{c.NS_ADDRESSING}}}Action") or "").strip()


def make_app(run_script: Runner, exchanges: list[Exchange], **options: Any) -> flask.Flask:
    """A Flask app with Basic auth (401 + ``WWW-Authenticate: Basic realm="WSMAN"``) and the WinRS blueprint."""
    app = flask.Flask(__name__)

    @app.before_request
    def authenticate() -> flask.Response | None:
        auth = flask.request.authorization
        if auth is None or auth.type != "basic" or USERS.get(auth.username or "") != auth.password:
            return flask.Response(b"", 401, {"WWW-Authenticate": 'Basic realm="WSMAN"'})
        flask.g.mailshift_user = auth.username
        flask.g.test_action = _request_action(flask.request.get_data())  # cached for the blueprint
        return None

    @app.after_request
    def record(response: flask.Response) -> flask.Response:
        body = response.get_data()
        exchanges.append(Exchange(flask.g.get("test_action", ""), response.status_code, len(body), body))
        return response

    app.register_blueprint(create_wsman_blueprint(run_script, **options))
    return app


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    """``serve(run_script, **blueprint_options) -> Server``; every server is stopped after the test."""
    started: list[tuple[BaseWSGIServer | MultiSocketServer, threading.Thread]] = []

    def start(run_script: Runner, **options: Any) -> Server:
        exchanges: list[Exchange] = []
        server = waitress.create_server(make_app(run_script, exchanges, **options), host="127.0.0.1", port=0, threads=8)
        assert isinstance(server, BaseWSGIServer)
        thread = threading.Thread(target=server.run, name="waitress-test", daemon=True)
        thread.start()
        started.append((server, thread))
        host, port = server.socket.getsockname()[:2]
        return Server(f"http://{host}:{port}", exchanges)

    yield start
    for server, thread in started:
        _stop(server, thread)


def _stop(server: BaseWSGIServer | MultiSocketServer, thread: threading.Thread) -> None:
    """Close every channel from the server's own loop, so the loop ends, then stop the worker threads."""
    assert isinstance(server, BaseWSGIServer)
    done = threading.Event()

    def close_all() -> None:
        for dispatcher in list(server._map.values()):
            dispatcher.close()
        done.set()

    server.trigger.pull_trigger(close_all)
    done.wait(5)
    thread.join(5)
    assert not thread.is_alive()
    server.task_dispatcher.shutdown()


@pytest.fixture
def protocols() -> Iterator[Callable[..., Protocol]]:
    """``protocol(url, user='alice', **kwargs) -> Protocol``; their HTTP sessions are closed after the test."""
    made: list[Protocol] = []

    def make(url: str, user: str = "alice", password: str | None = None, **kwargs: Any) -> Protocol:
        protocol = Protocol(url, transport="basic", username=user, password=password or USERS[user], **CLIENT_OPTIONS, **kwargs)
        made.append(protocol)
        return protocol

    yield make
    for protocol in made:
        protocol.transport.close_session()


def session(server: Server, user: str = "alice", password: str | None = None, **kwargs: Any) -> winrm.Session:
    return winrm.Session(server.url, auth=(user, password or USERS[user]), transport="basic", **CLIENT_OPTIONS, **kwargs)


def ps_command(script: str) -> str:
    return "powershell -encodedcommand " + base64.b64encode(script.encode("utf-16-le")).decode("ascii")


# --- Session.run_ps / run_cmd ---------------------------------------------------------------


def test_run_ps_decodes_utf16le_and_writes_cp437(serve: Callable[..., Server]) -> None:
    server = serve(upper_runner)
    result = session(server).run_ps("Get-Überblick -Name 'Straße'")
    assert result.status_code == 0
    assert result.std_err == b""
    # cp437 has Ü ("ß".upper() is "SS"), so the decoded, upper-cased text survives intact.
    assert result.std_out.decode("cp437") == "GET-ÜBERBLICK -NAME 'STRASSE'\r\n"
    # Every reply echoed the request's MessageID (pywinrm asserts it for Signal and Delete).
    assert [e.status for e in server.exchanges] == [200] * len(server.exchanges)


def test_run_ps_with_codepage_65001_returns_utf8(serve: Callable[..., Server], protocols: Callable[..., Protocol]) -> None:
    server = serve(upper_runner)
    protocol = protocols(server.url)
    shell_id = protocol.open_shell(codepage=65001)
    command_id = protocol.run_command(shell_id, ps_command("Write-Output 'Überblick ✓ 日本'"))
    stdout, stderr, code = protocol.get_command_output(shell_id, command_id)
    protocol.cleanup_command(shell_id, command_id)
    protocol.close_shell(shell_id)
    assert (stdout.decode("utf-8"), stderr, code) == ("WRITE-OUTPUT 'ÜBERBLICK ✓ 日本'\r\n", b"", 0)


def test_characters_outside_cp437_become_question_marks(serve: Callable[..., Server]) -> None:
    server = serve(upper_runner)
    result = session(server).run_ps("Write-Output 'Überblick ✓'")
    assert result.std_out == "WRITE-OUTPUT 'ÜBERBLICK ?'\r\n".encode("cp437")


def test_run_ps_errors_come_back_as_clean_text_with_exit_code_1(serve: Callable[..., Server]) -> None:
    errors = [
        "Get-MigrationBatch : The operation couldn't be performed because object 'b<1>&Ü' couldn't be found.\n"
        "At line:1 char:1\n+ Get-MigrationBatch -Identity 'b<1>&Ü'\n+ ~~~~~~~~~~~~~~~~~~",
        "    + CategoryInfo          : NotSpecified: (:) [Get-MigrationBatch], ManagementObjectNotFoundException",
    ]
    server = serve(Recorder(ScriptOutcome(stdout="partial\n", errors=errors, exit_code=1)))
    result = session(server).run_ps("Get-MigrationBatch -Identity 'b<1>&Ü'")
    assert result.status_code == 1
    assert result.std_out == b"partial\r\n"
    assert result.std_err.decode("utf-8") == "\n".join(errors).strip()


def test_run_cmd_runs_command_and_arguments_as_powershell_text(serve: Callable[..., Server]) -> None:
    recorder = Recorder(ScriptOutcome(stdout="Identity Status\n-------- ------\nb1       Synced\n"))
    server = serve(recorder)
    result = session(server, user="bob").run_cmd("Get-MigrationBatch", ["-Identity", "b1"])
    assert recorder.calls == [("Get-MigrationBatch -Identity b1", "bob")]
    assert result.std_out == b"Identity Status\r\n-------- ------\r\nb1       Synced\r\n"
    assert result.status_code == 0


def test_root_path_serves_the_same_door(serve: Callable[..., Server]) -> None:
    recorder = Recorder()
    server = serve(recorder)
    # pywinrm maps any path other than /wsman to "/".
    result = winrm.Session(f"{server.base}/powershell", auth=("alice", USERS["alice"]), transport="basic", **CLIENT_OPTIONS).run_ps("Get-Date")
    assert result.std_out == b"ok\r\n"
    assert recorder.calls == [("Get-Date", "alice")]


# --- Protocol, step by step -----------------------------------------------------------------


def test_protocol_calls_step_by_step(serve: Callable[..., Server], protocols: Callable[..., Protocol]) -> None:
    recorder = Recorder(ScriptOutcome(stdout="line 1\nline 2\n"))
    server = serve(recorder)
    protocol = protocols(server.url)
    shell_id = protocol.open_shell()
    command_id = protocol.run_command(shell_id, "powershell", ["-NoProfile", "-Command", "Get-MigrationUser"])
    protocol.send_command_input(shell_id, command_id, "y\r\n", end=True)
    assert protocol.get_command_output(shell_id, command_id) == (b"line 1\r\nline 2\r\n", b"", 0)
    protocol.cleanup_command(shell_id, command_id)
    # Terminated commands are gone: a second Receive names an unknown command.
    with pytest.raises(WSManFaultError) as excinfo:
        protocol.get_command_output_raw(shell_id, command_id)
    assert excinfo.value.wsman_fault_code == c.FaultCode.INVALID_SELECTORS
    protocol.close_shell(shell_id)
    assert recorder.calls == [("Get-MigrationUser", "alice")]
    create = server.actions(c.ACTION_CREATE)[0].body
    assert b"<rsp:ShellId>" + shell_id.encode() + b"</rsp:ShellId>" in create
    # Delete had an empty body and closed the shell: the next command fails.
    with pytest.raises(WSManFaultError) as excinfo:
        protocol.run_command(shell_id, "Get-Date")
    assert excinfo.value.wsman_fault_code == c.FaultCode.INVALID_SELECTORS


def test_slow_command_receive_times_out_and_pywinrm_retries(serve: Callable[..., Server], protocols: Callable[..., Protocol]) -> None:
    server = serve(Recorder(ScriptOutcome(stdout="finally\n"), delay=2.5))
    protocol = protocols(server.url, operation_timeout_sec=1, read_timeout_sec=3)
    shell_id = protocol.open_shell()
    command_id = protocol.run_command(shell_id, ps_command("Start-Sleep 2"))
    started = time.monotonic()
    assert protocol.get_command_output(shell_id, command_id) == (b"finally\r\n", b"", 0)
    assert 2.0 < time.monotonic() - started < 4.0
    timed_out = server.actions(c.ACTION_RECEIVE, status=500)
    assert len(timed_out) >= 2
    assert all(b'Code="2150858793"' in e.body and b"w:TimedOut" in e.body for e in timed_out)
    protocol.close_shell(shell_id)


def test_concurrent_receives_do_not_wait_for_each_other(serve: Callable[..., Server], protocols: Callable[..., Protocol]) -> None:
    server = serve(Recorder(delay=1.0))
    results: list[tuple[bytes, bytes, int]] = []

    def run(user: str) -> None:
        protocol = protocols(server.url, user=user)
        shell_id = protocol.open_shell()
        command_id = protocol.run_command(shell_id, "Get-Date")
        results.append(protocol.get_command_output(shell_id, command_id))
        protocol.close_shell(shell_id)

    threads = [threading.Thread(target=run, args=(user,)) for user in ("alice", "bob", "alice", "bob")]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == [(b"ok\r\n", b"", 0)] * 4
    assert time.monotonic() - started < 2.5


def test_big_output_is_split_across_receives_under_max_envelope_size(serve: Callable[..., Server]) -> None:
    lines = [f"{i:06d} {'x' * 90}" for i in range(6000)]  # about 600 KB
    server = serve(Recorder(ScriptOutcome(stdout="\n".join(lines) + "\n")))
    result = session(server).run_ps("Get-MigrationUser")
    assert result.std_out.decode("cp437").split("\r\n")[:-1] == lines
    receives = server.actions(c.ACTION_RECEIVE, status=200)
    assert len(receives) >= 5
    assert max(e.size for e in receives) <= Protocol.DEFAULT_MAX_ENV_SIZE
    assert max(e.size for e in receives) > Protocol.DEFAULT_MAX_ENV_SIZE * 0.9
    assert all(b"CommandState/Running" in e.body for e in receives[:-1])
    assert b"CommandState/Done" in receives[-1].body


# --- Refusals -------------------------------------------------------------------------------


def test_wrong_password_is_invalid_credentials(serve: Callable[..., Server]) -> None:
    recorder = Recorder()
    server = serve(recorder)
    with pytest.raises(InvalidCredentialsError):
        session(server, password="wrong").run_ps("Get-Date")
    assert recorder.calls == []


def test_unknown_shell_id_is_an_invalid_selectors_fault(serve: Callable[..., Server], protocols: Callable[..., Protocol]) -> None:
    server = serve(Recorder())
    protocol = protocols(server.url)
    with pytest.raises(WSManFaultError) as excinfo:
        protocol.run_command(str(uuid.uuid4()).upper(), "Get-Date")
    fault = excinfo.value
    assert fault.code == 500
    assert fault.wsman_fault_code == 2150858843
    assert fault.fault_code == "s:Sender"
    assert fault.fault_subcode == "w:InvalidSelectors"
    assert "shell was not found" in fault.reason


def test_another_users_shell_is_unknown(serve: Callable[..., Server], protocols: Callable[..., Protocol]) -> None:
    recorder = Recorder()
    server = serve(recorder)
    shell_id = protocols(server.url, user="alice").open_shell()
    bob = protocols(server.url, user="bob")
    with pytest.raises(WSManFaultError) as excinfo:
        bob.run_command(shell_id, "Remove-MigrationBatch -Identity b1")
    assert excinfo.value.wsman_fault_code == 2150858843
    with pytest.raises(WSManFaultError):
        bob.close_shell(shell_id)
    assert recorder.calls == []
    protocols(server.url, user="alice").close_shell(shell_id)


def test_shell_limit_per_user(serve: Callable[..., Server], protocols: Callable[..., Protocol]) -> None:
    server = serve(Recorder(), max_shells_per_user=2)
    alice = protocols(server.url)
    first, _ = alice.open_shell(), alice.open_shell()
    with pytest.raises(WSManFaultError) as excinfo:
        alice.open_shell()
    assert excinfo.value.wsman_fault_code == 2150859173
    assert excinfo.value.fault_subcode == "w:QuotaLimit"
    assert "maximum number of shells for this user has been exceeded" in excinfo.value.reason
    protocols(server.url, user="bob").open_shell()  # the quota is per user
    alice.close_shell(first, close_session=False)
    alice.open_shell()  # a closed shell frees its slot


def test_idle_shells_are_reaped(serve: Callable[..., Server], protocols: Callable[..., Protocol]) -> None:
    server = serve(Recorder(), shell_idle_timeout=0.5, max_shells_per_user=1)
    protocol = protocols(server.url)
    shell_id = protocol.open_shell()
    time.sleep(0.8)
    with pytest.raises(WSManFaultError) as excinfo:
        protocol.run_command(shell_id, "Get-Date")
    assert excinfo.value.wsman_fault_code == 2150858843
    # The reaped shell no longer counts against the quota of one.
    protocol.close_shell(protocol.open_shell())


def _envelope(action: str, resource_uri: str = c.RESOURCE_URI_CMD, body: str = "", doctype: str = "", entity: str = "") -> bytes:
    return f"""<?xml version="1.0" encoding="utf-8"?>{doctype}
<env:Envelope xmlns:env="{c.NS_SOAP}" xmlns:a="{c.NS_ADDRESSING}" xmlns:w="{c.NS_WSMAN}" xmlns:rsp="{c.NS_SHELL}">
  <env:Header>
    <a:To>http://windows-host:5985/wsman</a:To>
    <a:MessageID>uuid:11111111-2222-3333-4444-555555555555</a:MessageID>
    <w:ResourceURI mustUnderstand="true">{resource_uri}</w:ResourceURI>
    <a:Action mustUnderstand="true">{action}</a:Action>
    <w:OperationTimeout>PT20S</w:OperationTimeout>
    <w:Locale xml:lang="en-US" mustUnderstand="false">{entity}</w:Locale>
  </env:Header>
  <env:Body>{body}</env:Body>
</env:Envelope>""".encode()


def _post(server: Server, data: bytes, path: str = "/wsman") -> requests.Response:
    with requests.Session() as http:
        http.trust_env = False
        return http.post(
            server.base + path,
            data=data,
            auth=("alice", USERS["alice"]),
            headers={"Content-Type": c.CONTENT_TYPE},
            timeout=10,
        )


def _fault(response: requests.Response) -> tuple[str, str, str, str | None]:
    """``(subcode, WSManFault code, reason, RelatesTo)`` of a fault response."""
    root = etree.fromstring(response.content)
    ns = {"s": c.NS_SOAP, "f": c.NS_WSMAN_FAULT, "a": c.NS_ADDRESSING}
    detail = root.find("s:Body/s:Fault/s:Detail/f:WSManFault", namespaces=ns)
    assert detail is not None
    return (
        root.findtext("s:Body/s:Fault/s:Code/s:Subcode/s:Value", namespaces=ns) or "",
        detail.get("Code", ""),
        root.findtext("s:Body/s:Fault/s:Reason/s:Text", namespaces=ns) or "",
        root.findtext("s:Header/a:RelatesTo", namespaces=ns),
    )


CREATE_BODY = "<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>"


def test_doctype_and_entities_are_rejected(serve: Callable[..., Server]) -> None:
    recorder = Recorder()
    server = serve(recorder)
    laughs = '<!DOCTYPE env:Envelope [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    external = '<!DOCTYPE env:Envelope [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    for doctype, entity in ((laughs, "&b;"), (external, "&x;")):
        response = _post(server, _envelope(c.ACTION_CREATE, body=CREATE_BODY, doctype=doctype, entity=entity))
        assert response.status_code == 500
        assert response.headers["Content-Type"] == c.CONTENT_TYPE
        subcode, code, reason, relates_to = _fault(response)
        assert (subcode, code, relates_to) == ("w:SchemaValidationError", "2150858819", None)
        assert "DTD" in reason
        assert b"root:" not in response.content
    assert server.actions(c.ACTION_CREATE, status=200) == []


def test_malformed_xml_and_missing_headers(serve: Callable[..., Server]) -> None:
    server = serve(Recorder())
    response = _post(server, b"<env:Envelope")
    assert response.status_code == 500
    assert _fault(response)[1] == "2150858819"
    no_action = _envelope("").replace(b"<a:Action mustUnderstand=\"true\"></a:Action>", b"")
    response = _post(server, no_action)
    assert (response.status_code, _fault(response)[:2]) == (500, ("a:InvalidMessageInformationHeader", "2150858767"))


def test_unsupported_action_and_resource_uri(serve: Callable[..., Server]) -> None:
    server = serve(Recorder())
    response = _post(server, _envelope(f"{c.NS_TRANSFER}/Get"))
    subcode, code, _, relates_to = _fault(response)
    assert (response.status_code, subcode, code) == (500, "a:ActionNotSupported", "2150858771")
    assert relates_to == "uuid:11111111-2222-3333-4444-555555555555"
    response = _post(server, _envelope(c.ACTION_CREATE, resource_uri="http://schemas.microsoft.com/powershell/Microsoft.Exchange", body=CREATE_BODY))
    assert (response.status_code, _fault(response)[:2]) == (500, ("a:DestinationUnreachable", "2150858770"))


def test_trailing_slash_and_query_string_are_tolerated(serve: Callable[..., Server]) -> None:
    server = serve(Recorder())
    for path in ("/wsman/", "/wsman?PSVersion=5.1", "/?x=1", "/powershell", "/powershell/?PSVersion=5.1"):
        response = _post(server, _envelope(c.ACTION_CREATE, body=CREATE_BODY), path=path)
        assert response.status_code == 200, path
        assert b"<w:Selector Name=\"ShellId\">" in response.content
        assert b"<a:RelatesTo>uuid:11111111-2222-3333-4444-555555555555</a:RelatesTo>" in response.content


def test_unknown_codepage_is_refused(serve: Callable[..., Server], protocols: Callable[..., Protocol]) -> None:
    server = serve(Recorder())
    with pytest.raises(WSManFaultError) as excinfo:
        protocols(server.url).open_shell(codepage=99999)
    assert (excinfo.value.wsman_fault_code, excinfo.value.fault_subcode) == (2150858835, "w:InvalidOptions")
