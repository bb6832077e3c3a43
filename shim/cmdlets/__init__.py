"""The cmdlet registry: every cmdlet declared once, bound like PowerShell, run on the engine."""

from shim.cmdlets.binder import Bound, bind, match_parameter
from shim.cmdlets.declarations import CMDLETS
from shim.cmdlets.model import ALL_SETS, COMMON_PARAMETERS, Cmdlet, Example, Parameter
from shim.cmdlets.registry import Registry, Session, engine_error

__all__ = [
    "ALL_SETS",
    "CMDLETS",
    "COMMON_PARAMETERS",
    "Bound",
    "Cmdlet",
    "Example",
    "Parameter",
    "Registry",
    "Session",
    "bind",
    "engine_error",
    "match_parameter",
]
