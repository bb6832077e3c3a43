"""The WinRS door: WS-Management shells that run PowerShell text for pywinrm-style clients.

``create_wsman_blueprint(run_script)`` returns a Flask blueprint; the app registers it after
its auth layer (which sets ``flask.g.mailshift_user``) and serves it with waitress.
"""

from shim.wsman.blueprint import create_wsman_blueprint
from shim.wsman.endpoint import RequestContext, ScriptRunner, WinRSEndpoint
from shim.wsman.faults import WSManFault
from shim.wsman.shells import ShellRegistry

__all__ = ["RequestContext", "ScriptRunner", "ShellRegistry", "WSManFault", "WinRSEndpoint", "create_wsman_blueprint"]
