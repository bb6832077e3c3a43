"""The Flask face of the WinRS door: routes only; the work is in :mod:`shim.wsman.endpoint`."""

from __future__ import annotations

import flask
from werkzeug.exceptions import RequestEntityTooLarge

from shim.wsman import constants as c
from shim.wsman.endpoint import RequestContext, ScriptRunner, WinRSEndpoint
from shim.wsman.shells import ShellRegistry

__all__ = ["create_wsman_blueprint"]


def create_wsman_blueprint(
    run_script: ScriptRunner,
    *,
    shell_idle_timeout: float = c.DEFAULT_SHELL_IDLE_TIMEOUT_SECONDS,
    max_shells_per_user: int = c.DEFAULT_MAX_SHELLS_PER_USER,
) -> flask.Blueprint:
    """A blueprint serving WinRS shells over WS-Management at POST ``/wsman``, ``/powershell`` and ``/``.

    The app's auth layer must authenticate first and put the user name in
    ``flask.g.mailshift_user``; requests without it are answered 401.

    Args:
        run_script: ``run_script(script_text, user) -> ScriptOutcome``, called in a worker thread per command.
        shell_idle_timeout: seconds without a request after which a shell is deleted.
        max_shells_per_user: shells one user may hold at once; one more gets WinRM's quota fault.

    Returns:
        The blueprint, named ``wsman``.

    Raises:
        ValueError: when ``shell_idle_timeout`` is not positive or ``max_shells_per_user`` is below 1.
    """
    registry = ShellRegistry(idle_timeout=shell_idle_timeout, max_shells_per_user=max_shells_per_user)
    endpoint = WinRSEndpoint(run_script, registry)
    blueprint = flask.Blueprint("wsman", __name__)

    def serve() -> flask.Response:
        user = flask.g.get("mailshift_user")
        if not user:
            return flask.Response(b"", 401, {"WWW-Authenticate": 'Basic realm="WSMAN"'})
        request = flask.request
        context = RequestContext(user=str(user), client_ip=request.remote_addr or "", address=request.base_url)
        request.max_content_length = c.MAX_REQUEST_BYTES
        try:
            data = request.get_data(cache=False)
        except RequestEntityTooLarge:
            status, body = endpoint.refuse_oversized_request()
        else:
            status, body = endpoint.handle(data, context)
        return flask.Response(body, status, content_type=c.CONTENT_TYPE)

    for number, rule in enumerate(c.ROUTES):
        blueprint.add_url_rule(rule, endpoint=f"serve_{number}", view_func=serve, methods=["POST"])
    return blueprint
