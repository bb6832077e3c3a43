"""The PowerShell module generator: Public/ functions, the format file, MAML help and the manifest.

Everything here is derived from the cmdlet registry (``shim.cmdlets.CMDLETS`` and the views
of ``shim.cmdlets.objects``); ``mailshift module build`` writes it into ``psmodule/Mailshift``.
"""

from shim.modulegen.build import GENERATED_MARKER, HAND_WRITTEN_FUNCTIONS, MARKER_TEXT, build, render_all

__all__ = ["GENERATED_MARKER", "HAND_WRITTEN_FUNCTIONS", "MARKER_TEXT", "build", "render_all"]
