"""The REST door (``/api/v1``): cmdlet metadata, cmdlet invocation with bound parameters, scripts, help.

Documented in ``shim/openapi.json``. Every error has one shape, ``{"error": {...}}`` (see
:func:`shim.jsonio.error_json`); a cmdlet's own errors come back in the ``errors`` list of a
200 answer beside whatever it returned, as PowerShell would write them to its error stream.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

import flask

from shim.cmdlets import Registry, Session
from shim.errors import BindingError, ShimError
from shim.host import NO_VALUE, ParameterToken, ScriptOutcome
from shim.jsonio import error_json, from_json, to_json

__all__ = ["create_rest_blueprint"]

API = "/api/v1"


class _BadRequest(ShimError):
    """Raised when a request body is not what the API expects."""

    category = "InvalidArgument"
    error_id = "BadRequest"
    terminating = True


def _fail(error: ShimError, status: int) -> flask.Response:
    response = flask.jsonify({"error": error_json(error)})
    response.status_code = status
    return response


def create_rest_blueprint(registry: Registry, session_for: Callable[[], Session],
                          run_script: Callable[[str, str], ScriptOutcome]) -> flask.Blueprint:
    """The REST blueprint.

    Args:
        registry: The cmdlets.
        session_for: The registry session of the authenticated administrator of this request.
        run_script: Runs PowerShell text for a user (the WinRS door's interpreter).
    """
    blueprint = flask.Blueprint("rest", __name__, url_prefix=API)
    metadata = registry.describe()
    by_name = {m["name"].lower(): m for m in metadata}

    @blueprint.get("/cmdlets")
    def list_cmdlets() -> flask.Response:
        return flask.jsonify({"cmdlets": metadata})

    @blueprint.get("/cmdlets/<name>")
    def show_cmdlet(name: str) -> flask.Response:
        found = by_name.get(name.lower())
        if found is None:
            return _fail(session_for().not_found(name), 404)
        return flask.jsonify(found)

    @blueprint.get("/help/<name>")
    def show_help(name: str) -> flask.Response:
        mode = flask.request.args.get("mode", "default")
        if mode not in ("default", "examples", "detailed", "full", "parameter"):
            return _fail(_BadRequest("mode must be default, examples, detailed, full or parameter"), 400)
        try:
            text = session_for().help(name, mode, flask.request.args.get("parameter"))  # type: ignore[arg-type]
        except ShimError as exc:
            return _fail(exc, 404)
        return flask.jsonify({"name": name, "mode": mode, "text": text})

    @blueprint.post("/cmdlets/<name>/invoke")
    def invoke(name: str) -> flask.Response:
        session = session_for()
        cmdlet = registry.find(name)
        if cmdlet is None:
            return _fail(session.not_found(name), 404)
        body = flask.request.get_json(silent=True)
        if body is None:
            body = {}
        if not isinstance(body, dict) or not isinstance(body.get("parameters", {}), dict) \
                or not isinstance(body.get("input", []), list):
            return _fail(_BadRequest('the body must be {"parameters": {...}, "input": [...]}'), 400)
        try:
            elements = _elements(registry, cmdlet.name, body.get("parameters", {}))
        except ShimError as exc:
            return _fail(exc, 400)
        inputs = [from_json(v) for v in body.get("input", [])] or [NO_VALUE]
        output: list[Any] = []
        errors: list[dict[str, Any]] = []
        warnings: list[str] = []
        for item in inputs:
            try:
                output += session.invoke(cmdlet.name, elements, item)
            except ShimError as exc:
                errors.append(error_json(exc))
                if exc.terminating:
                    break
            finally:
                warnings += session.warnings()
        return flask.jsonify({"output": [to_json(o) for o in output], "errors": errors, "warnings": warnings})

    @blueprint.errorhandler(RecursionError)
    def too_deep(_: RecursionError) -> flask.Response:
        # json and the binder recurse per level: a body nested a thousand levels deep ends here, not in a 500.
        return _fail(_BadRequest("the body nests arrays or objects too deeply; send at most a few levels"), 400)

    @blueprint.post("/script")
    def script() -> flask.Response:
        body = flask.request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("script"), str):
            return _fail(_BadRequest('the body must be {"script": "PowerShell text"}'), 400)
        outcome = run_script(body["script"], session_for().user)
        return flask.jsonify({"stdout": outcome.stdout, "errors": outcome.errors, "exitCode": outcome.exit_code})

    return blueprint


def _elements(registry: Registry, cmdlet_name: str, parameters: dict[str, Any]) -> list[Any]:
    cmdlet = registry.find(cmdlet_name)
    assert cmdlet is not None
    from shim.cmdlets import match_parameter

    elements: list[Any] = []
    for name, value in parameters.items():
        parameter = match_parameter(cmdlet, name)
        if parameter.type.name == "Byte[]" and isinstance(value, str):
            try:
                value = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise BindingError(f"-{parameter.name} takes a byte array; send it as base64 text.",
                                   command=cmdlet.name, target=parameter.name) from None
        elements.append(ParameterToken(parameter.name, from_json(value), splatted=True))
    return elements
