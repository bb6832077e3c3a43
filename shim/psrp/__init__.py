"""The PowerShell remoting door's protocol side: psrpcore runspace pools serving the cmdlet registry.

Stock PowerShell's ``New-PSSession -ConfigurationName Microsoft.Exchange`` + ``Import-PSSession``
(and pypsrp) talk PSRP over WS-Management; :mod:`shim.wsman` carries the messages and this
package runs them: :class:`RunspaceShell` (one pool, its pipelines), :class:`RunspaceRegistry`
(limits and idle expiry), :func:`run_pipeline` (plain commands only, as Exchange's restricted
endpoint), :func:`command_metadata` (what Import-PSSession asks for), and the xpress framing of
compressed streams.
"""

from shim.psrp.metadata import command_metadata
from shim.psrp.pool import PSRPError, ProtocolFailure, ReceiveChunk, RunspaceShell, SessionFactory, UnknownCommand
from shim.psrp.runner import PipelineStopped, run_pipeline
from shim.psrp.sessions import RunspaceRegistry, SessionLimitReached, ShellUnknown

__all__ = [
    "PSRPError",
    "PipelineStopped",
    "ProtocolFailure",
    "ReceiveChunk",
    "RunspaceRegistry",
    "RunspaceShell",
    "SessionFactory",
    "SessionLimitReached",
    "ShellUnknown",
    "UnknownCommand",
    "command_metadata",
    "run_pipeline",
]
