"""The PowerShell module generator: Public/ functions, the format file, MAML help and the manifest.

Everything here is derived from the cmdlet registry (``shim.cmdlets.CMDLETS`` and the views
of ``shim.cmdlets.objects``); ``mailshift module build`` writes it into ``psmodule/Mailshift``, and
the manifest of the opt-in companion module into ``psmodule/Mailshift.ExchangePreludes``.
"""

from shim.modulegen.build import (
    GENERATED_MARKER,
    HAND_WRITTEN_FILES,
    HAND_WRITTEN_FUNCTIONS,
    MARKER_TEXT,
    MODULE_NAME,
    PRELUDE_FUNCTIONS,
    PRELUDES_MODULE_NAME,
    REDIRECTED_PRELUDES,
    build,
    render_all,
)

__all__ = [
    "GENERATED_MARKER", "HAND_WRITTEN_FILES", "HAND_WRITTEN_FUNCTIONS", "MARKER_TEXT", "MODULE_NAME", "PRELUDES_MODULE_NAME",
    "PRELUDE_FUNCTIONS", "REDIRECTED_PRELUDES", "build", "render_all",
]
