"""Names and tunables of the PowerShell remoting door (PSRP over WS-Management), in one place."""

from __future__ import annotations

from typing import Final

#: Resource URIs served as PSRP shells: ``-ConfigurationName Microsoft.Exchange`` and the default configuration.
RESOURCE_URI_PREFIX: Final = "http://schemas.microsoft.com/powershell/"
CONFIGURATION_EXCHANGE: Final = "Microsoft.Exchange"
CONFIGURATION_POWERSHELL: Final = "Microsoft.PowerShell"
CONFIGURATIONS: Final = (CONFIGURATION_EXCHANGE, CONFIGURATION_POWERSHELL)
RESOURCE_URIS: Final = tuple(RESOURCE_URI_PREFIX + name for name in CONFIGURATIONS)

#: Namespace of the ``creationXml`` element in a PSRP Create body.
NS_POWERSHELL: Final = "http://schemas.microsoft.com/powershell"

#: Signal codes a PSRP client sends (compared case-insensitively). MS-PSRP spells Ctrl+C ``crtl_c``;
#: pypsrp 0.9 and Windows PowerShell send ``ctrl_c``.
SIGNAL_PS_CTRL_C: Final = "http://schemas.microsoft.com/powershell/signal/ctrl_c"
SIGNAL_PS_CRTL_C: Final = "http://schemas.microsoft.com/powershell/signal/crtl_c"

#: WS-Management option and values for xpress compression (MS-WSMV 3.1.4.1.31.6).
COMPRESSION_XPRESS: Final = "xpress"

#: PSVersionTable values reported to clients: Windows PowerShell 5.1 on Windows Server 2019, as Exchange 2019 runs.
PS_VERSION: Final = "5.1.17763.1"
PS_BUILD_VERSION: Final = "10.0.17763.1"
CLR_VERSION: Final = "4.0.30319.42000"
WSMAN_STACK_VERSION: Final = "3.0"

# --- Tunables -------------------------------------------------------------------------------

DEFAULT_POOL_IDLE_TIMEOUT_SECONDS: Final = 900.0
"""A runspace pool with no request for this long is closed (a dead client's session goes away)."""

DEFAULT_MAX_POOLS_PER_USER: Final = 10
"""Open runspace pools one administrator may hold at once (Exchange Online allowed 3 to 5 sessions per admin)."""

MAX_FRAGMENT_BYTES: Final = 32768
"""Largest PSRP fragment queued for a Receive; several fit in the smallest MaxEnvelopeSize (153600)."""

MIN_FRAGMENT_BYTES: Final = 1024
"""Smallest fragment size used when a client's MaxEnvelopeSize is tiny."""

MAX_XPRESS_BLOCK_BYTES: Final = 65536
"""Largest block of an xpress-framed stream (MS-WSMV endnote 134)."""
