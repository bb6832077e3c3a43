"""The Mailshift service as a Flask app: ``create_app`` builds the engine, the registry and every door.

Every route needs an administrator's Basic credentials (no anonymous access); the WS-Management
paths also accept NTLM and Negotiate, with MS-WSMV message encryption (encrypted requests are
decrypted before the door reads them, replies to them are encrypted, and the acceptor's last
token goes back on the 200). Plain HTTP is served to loopback clients only, unless
``ALLOW_REMOTE_HTTP`` says otherwise; remote clients use HTTPS.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import flask
from werkzeug.exceptions import RequestEntityTooLarge

from engine.private import private_folder
from engine.service import MigrationService
from shim.accounts import Account, Accounts
from shim.cmdlets import Registry, Session
from shim.config import load_config, smtp_settings, target_settings
from shim.errors import ShimError
from shim.host import ScriptOutcome
from shim.jsonio import error_json
from shim.limits import MAX_REQUEST_BYTES, check_request_body
from shim.rest import API, create_rest_blueprint
from shim.shellcontrol import ShellControl
from shim.throttle import LoginThrottle, Refusal
from shim.wsman import create_wsman_blueprint
from shim.wsman.auth import AuthFailed, NegotiateAuthenticator, connection_key, token_user

_log = logging.getLogger(__name__)

__all__ = ["create_app", "script_runner"]

_WSMAN_PATHS = ("/wsman", "/powershell")


def script_runner(registry: Registry, accounts: Accounts, door: str = "WinRS") -> Any:
    """``run_script(text, user) -> ScriptOutcome``: a fresh interpreter per script, as powershell.exe is per command.

    ``door`` names the door in the audit lines of the script's cmdlet calls.
    """
    def run(text: str, user: str) -> ScriptOutcome:
        from shim.pslang import Interpreter

        account = next((a for a in accounts.names() if a.name == user), None)
        session = registry.session(user, email=account.email if account else None, door=door)
        return Interpreter(session).run(text)

    return run


def create_app(test_config: Mapping[str, Any] | None = None, *, service: MigrationService | None = None) -> flask.Flask:
    """Build the service.

    Args:
        test_config: Settings over the defaults and the instance file (see :mod:`shim.config`).
        service: An engine to use instead of one built from the settings (it is not closed by the app).
    """
    config = load_config(test_config)
    app = flask.Flask("mailshift")
    app.config.update(config)
    instance = Path(config["INSTANCE"])
    private_folder(instance)
    private_folder(config["IMPORT_FOLDER"])
    if service is None:
        service = MigrationService(instance, target=target_settings(config), smtp=smtp_settings(config),
                                   poll_seconds=float(config["SCHEDULER_POLL_SECONDS"]),
                                   run_scheduler=bool(config["RUN_SCHEDULER"]),
                                   master_separator=str(config["MASTER_USER_SEPARATOR"]))
        app.extensions["mailshift_owns_service"] = True
    accounts = Accounts(instance)
    registry = Registry(service, import_folder=config["IMPORT_FOLDER"])
    app.extensions["mailshift_service"] = service
    app.extensions["mailshift_registry"] = registry
    app.extensions["mailshift_accounts"] = accounts
    run_script = script_runner(registry, accounts)
    negotiate = _negotiate_authenticator(accounts)
    throttle = LoginThrottle(free_failures=int(config["LOGIN_FREE_FAILURES"]),
                             max_lockout=float(config["LOGIN_LOCKOUT_MAX_SECONDS"]))
    app.extensions["mailshift_login_throttle"] = throttle

    def refuse(wsman: bool) -> flask.Response:
        response = _problem(401, "Give the user name and password of a Mailshift administrator "
                                 "(mailshift admin add NAME creates one).")
        response.headers["WWW-Authenticate"] = f'Basic realm="{"WSMAN" if wsman else "Mailshift"}"'
        if wsman and negotiate is not None:
            response.headers.add("WWW-Authenticate", "Negotiate")
            response.headers.add("WWW-Authenticate", "NTLM")
        return response

    @app.before_request
    def limit() -> None:
        check_request_body(flask.request.environ)  # a refusal is answered in the door's shape

    @app.before_request
    def authenticate() -> flask.Response | None:
        request = flask.request
        if request.scheme == "http" and not config["ALLOW_REMOTE_HTTP"] and not _loopback(request.remote_addr):
            return _problem(403, "Plain HTTP is accepted from this machine only; connect over HTTPS.")
        wsman = request.path.lower().rstrip("/") in ("", *_WSMAN_PATHS)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if wsman and negotiate is not None and scheme.lower() in ("negotiate", "ntlm"):
            return _negotiate(request, negotiate, accounts, throttle, scheme, token, refuse)
        if wsman and negotiate is not None and not scheme:
            user = negotiate.user_of(connection_key(request.environ))
            account = accounts.canonical(user) if user else None
            if account is not None:
                flask.g.mailshift_user = account.name
                flask.g.mailshift_account = account
                return _decrypt(request, negotiate)
        credentials = _basic(request)
        if credentials is None:
            return refuse(wsman)  # no usable Basic credentials: a challenge, not a failed login
        refusal = throttle.check(credentials[0], request.remote_addr)
        if refusal is not None:
            return _throttled(refusal)
        account = accounts.verify(*credentials)
        if account is None:
            throttle.failed(credentials[0], request.remote_addr)
            return refuse(wsman)
        throttle.succeeded(account.name, request.remote_addr)
        flask.g.mailshift_user = account.name
        flask.g.mailshift_account = account
        return None

    @app.after_request
    def seal(response: flask.Response) -> flask.Response:
        protocol = flask.g.get("mailshift_encrypted")
        if protocol and negotiate is not None:
            content_type, data = negotiate.wrap(connection_key(flask.request.environ), response.get_data(), protocol)
            response.set_data(data)
            response.headers["Content-Type"] = content_type
        final = flask.g.get("mailshift_auth_reply")
        if final:
            response.headers["WWW-Authenticate"] = final
        return response

    def session_for() -> Session:
        account: Account = flask.g.mailshift_account
        return registry.session(account.name, email=account.email, door="REST")

    app.register_blueprint(create_rest_blueprint(registry, session_for, script_runner(registry, accounts, "REST")))
    def session_of(user: str) -> Session:
        account = next((a for a in accounts.names() if a.name == user), None)
        return registry.session(user, email=account.email if account else None, door="PSRP")

    shell_tables: list[Any] = []
    app.register_blueprint(create_wsman_blueprint(run_script, shell_idle_timeout=float(config["SHELL_IDLE_TIMEOUT"]),
                                                  max_shells_per_user=int(config["MAX_SHELLS_PER_USER"]),
                                                  make_session=session_of, shell_tables=shell_tables))
    app.extensions["mailshift_shell_control"] = ShellControl(instance, shell_tables)

    @app.get(API + "/openapi.json")
    def openapi() -> flask.Response:
        return flask.send_file(Path(__file__).with_name("openapi.json"), mimetype="application/json")

    @app.errorhandler(404)
    def not_found(_: Exception) -> flask.Response:
        return _problem(404, f"There is nothing at {flask.request.path}; the API is under {API}.")

    @app.errorhandler(405)
    def not_allowed(_: Exception) -> flask.Response:
        return _problem(405, f"{flask.request.method} is not allowed on {flask.request.path}.")

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_: Exception) -> flask.Response:
        response = _problem(413, f"The request body is larger than the {MAX_REQUEST_BYTES:,} bytes accepted "
                                 "(a 10 MB CSV file as base64 fits); split the work over several requests.")
        response.headers["Connection"] = "close"  # the rest of the body is never read
        return response

    return app


def _negotiate_authenticator(accounts: Accounts) -> NegotiateAuthenticator | None:
    """NTLM/Negotiate for the WS-Management paths, or None where the platform cannot keep the store in memory."""
    try:
        return NegotiateAuthenticator(accounts.nt_hash)
    except (AttributeError, OSError) as exc:  # os.memfd_create is Linux-only
        _log.warning("NTLM and Negotiate are off: %s", exc)
        return None


def _negotiate(request: flask.Request, negotiate: NegotiateAuthenticator, accounts: Accounts, throttle: LoginThrottle,
               scheme: str, token: str, refuse: Any) -> flask.Response | None:
    """One NTLM/Negotiate handshake step; a completed one lets the request through (or answers the empty setup POST)."""
    key = connection_key(request.environ)
    named = token_user(token)  # only the AUTHENTICATE step names the user and proves the password
    refusal = throttle.check(named, request.remote_addr) if named is not None else None
    if refusal is not None:  # answered here: an NTLM client expects a challenge after NEGOTIATE, not a refusal
        return _throttled(refusal)
    try:
        shake = negotiate.step(key, scheme, token)
    except AuthFailed as exc:
        _log.info("NTLM/Negotiate refused for %s: %s", request.remote_addr, exc.message)
        throttle.failed(named, request.remote_addr)
        return refuse(True)  # type: ignore[no-any-return]
    reply = f"{scheme} {base64.b64encode(shake.token).decode()}" if shake.token else None
    if shake.user is None:
        response = flask.Response(b"", 401)
        response.headers["WWW-Authenticate"] = reply or scheme
        return response
    account = accounts.canonical(shake.user)
    if account is None:
        throttle.failed(shake.user, request.remote_addr)
        return refuse(True)  # type: ignore[no-any-return]
    if named is not None:
        throttle.succeeded(account.name, request.remote_addr)
    flask.g.mailshift_user = account.name
    flask.g.mailshift_account = account
    flask.g.mailshift_auth_reply = reply
    if not request.content_length and not request.get_data():
        response = flask.Response(b"", 200)  # the empty POST that sets up the context for encryption
        if reply:
            response.headers["WWW-Authenticate"] = reply
        return response
    return _decrypt(request, negotiate)


def _decrypt(request: flask.Request, negotiate: NegotiateAuthenticator) -> flask.Response | None:
    """Decrypt an encrypted WS-Management body for the door (``flask.g.mailshift_body``) and mark the reply for encryption."""
    content_type = request.headers.get("Content-Type", "")
    if not content_type.lower().startswith(("multipart/encrypted", "multipart/x-multi-encrypted")):
        return None
    protocol = next((p for p in ("application/HTTP-SPNEGO-session-encrypted",) if p.lower() in content_type.lower()), None)
    if protocol is None:
        return _problem(415, f"Encrypted bodies of type {content_type!r} are not supported (SPNEGO only).")
    try:
        flask.g.mailshift_body = negotiate.unwrap(connection_key(request.environ), content_type, request.get_data())
    except AuthFailed as exc:
        return _problem(400, exc.message)
    flask.g.mailshift_encrypted = protocol
    return None


def _throttled(refusal: Refusal) -> flask.Response:
    """429 with ``Retry-After`` for a login refused by the throttle (every door; pywinrm and pypsrp report the text)."""
    response = _problem(429, f"Too many failed logins for this {refusal.scope}; try again in {refusal.retry_after} s.")
    response.headers["Retry-After"] = str(refusal.retry_after)
    return response


def _problem(status: int, message: str) -> flask.Response:
    """An HTTP-level refusal in the API's one error shape."""
    error = ShimError(message, category="SecurityError" if status in (401, 403, 429) else "InvalidOperation",
                      error_id=f"Http{status}")
    error.terminating = True
    response = flask.jsonify({"error": error_json(error)})
    response.status_code = status
    return response


def _loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def _basic(request: flask.Request) -> tuple[str, str] | None:
    """``(name, password)`` from an ``Authorization: Basic`` header, or None when there is none or it is malformed."""
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        name, sep, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not sep:
        return None
    return name, password
