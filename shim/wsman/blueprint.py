"""The Flask face of the WS-Management door (WinRS and PSRP): routes only; the work is in :mod:`shim.wsman.endpoint`."""

from __future__ import annotations

from typing import Any

import flask
from werkzeug.exceptions import RequestEntityTooLarge

from shim.psrp import RunspaceRegistry, SessionFactory
from shim.shelltable import ShellTable
from shim.wsman import constants as c
from shim.wsman.endpoint import RequestContext, ScriptRunner, WinRSEndpoint
from shim.wsman.powershell import PowerShellEndpoint
from shim.wsman.shells import ShellRegistry

__all__ = ["create_wsman_blueprint"]


def create_wsman_blueprint(
    run_script: ScriptRunner,
    *,
    shell_idle_timeout: float = c.DEFAULT_SHELL_IDLE_TIMEOUT_SECONDS,
    max_shells_per_user: int = c.DEFAULT_MAX_SHELLS_PER_USER,
    make_session: SessionFactory | None = None,
    shell_tables: list[ShellTable[Any]] | None = None,
) -> flask.Blueprint:
    """A blueprint serving WinRS (and PSRP) shells over WS-Management at POST ``/wsman``, ``/powershell`` and ``/``.

    The app's auth layer must authenticate first and put the user name in
    ``flask.g.mailshift_user``; requests without it are answered 401.

    Args:
        run_script: ``run_script(script_text, user) -> ScriptOutcome``, called in a worker thread per command.
        shell_idle_timeout: seconds without a request after which a shell is deleted.
        max_shells_per_user: shells one user may hold at once; one more gets WinRM's quota fault (WinRS
            shells and PowerShell sessions are counted apart, each up to this number).
        make_session: ``make_session(user) -> Session``; when given, PowerShell remoting (PSRP) shells are
            served for ``Microsoft.Exchange`` and ``Microsoft.PowerShell``.
        shell_tables: when given, the door's shell tables are appended to it (for :mod:`shim.shellcontrol`).

    Returns:
        The blueprint, named ``wsman``.

    Raises:
        ValueError: when ``shell_idle_timeout`` is not positive or ``max_shells_per_user`` is below 1.
    """
    registry = ShellRegistry(idle_timeout=shell_idle_timeout, max_shells_per_user=max_shells_per_user)
    powershell = None
    if make_session is not None:
        pools = RunspaceRegistry(idle_timeout=shell_idle_timeout, max_per_user=max_shells_per_user)
        powershell = PowerShellEndpoint(make_session, pools)
    endpoint = WinRSEndpoint(run_script, registry, powershell=powershell)
    if shell_tables is not None:
        shell_tables.append(registry)
        if powershell is not None:
            shell_tables.append(powershell.registry)
    blueprint = flask.Blueprint("wsman", __name__)

    def serve() -> flask.Response:
        user = flask.g.get("mailshift_user")
        if not user:
            return flask.Response(b"", 401, {"WWW-Authenticate": 'Basic realm="WSMAN"'})
        request = flask.request
        context = RequestContext(user=str(user), client_ip=request.remote_addr or "", address=request.base_url)
        request.max_content_length = c.MAX_REQUEST_BYTES + 1  # a longer chunked body is cut there and refused
        decrypted = flask.g.get("mailshift_body")  # set by the auth layer for an encrypted request
        try:
            data = decrypted if decrypted is not None else request.get_data(cache=False)
        except RequestEntityTooLarge:
            status, body = endpoint.refuse_oversized_request()
        else:
            status, body = endpoint.handle(data, context)
        return flask.Response(body, status, content_type=c.CONTENT_TYPE)

    @blueprint.errorhandler(RequestEntityTooLarge)
    def too_large(_: RequestEntityTooLarge) -> flask.Response:
        # Also raised by the app before this door reads a byte (its limit on every door's bodies).
        status, body = endpoint.refuse_oversized_request()
        return flask.Response(body, status, content_type=c.CONTENT_TYPE)

    for number, rule in enumerate(c.ROUTES):
        blueprint.add_url_rule(rule, endpoint=f"serve_{number}", view_func=serve, methods=["POST"])
    return blueprint
