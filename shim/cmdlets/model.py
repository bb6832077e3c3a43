"""How a cmdlet is declared: parameters, parameter sets, output, help. Declared once, read by every door."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from shim.cmdlets.types import INT32, STRING, SWITCH, ParamType, enum

if TYPE_CHECKING:
    from shim.cmdlets.binder import Bound
    from shim.cmdlets.context import Context

__all__ = [
    "ALL_SETS",
    "COMMON_PARAMETERS",
    "Cmdlet",
    "Example",
    "Parameter",
    "SHOULD_PROCESS_PARAMETERS",
]

#: Marks a parameter that belongs to every parameter set of its cmdlet.
ALL_SETS = "__AllParameterSets"


@dataclass(frozen=True)
class Parameter:
    """One parameter of a cmdlet, as PowerShell's ParameterAttribute would describe it."""

    name: str
    type: ParamType
    help: str
    #: The parameter sets it belongs to; ``(ALL_SETS,)`` for all.
    sets: tuple[str, ...] = (ALL_SETS,)
    #: The sets in which it is mandatory (``(ALL_SETS,)`` = every set it is in).
    mandatory: tuple[str, ...] = ()
    position: int | None = None
    from_pipeline: bool = False
    from_pipeline_by_property_name: bool = False
    aliases: tuple[str, ...] = ()
    #: Accepted for script compatibility and ignored (``-DomainController``, ``-Partition``).
    ignored: bool = False
    #: Allowed integer range (ValidateRange), inclusive.
    range: tuple[int, int] | None = None

    def in_set(self, set_name: str) -> bool:
        """Whether the parameter belongs to the parameter set ``set_name``."""
        return ALL_SETS in self.sets or set_name in self.sets

    def mandatory_in(self, set_name: str) -> bool:
        """Whether the parameter must be given in the parameter set ``set_name``."""
        return self.in_set(set_name) and (ALL_SETS in self.mandatory or set_name in self.mandatory)


@dataclass(frozen=True)
class Example:
    """A help example: the command as typed and what it does."""

    code: str
    remarks: str


@dataclass(frozen=True)
class Cmdlet:
    """A cmdlet: its surface (parameters, sets, output), its help, and the engine call behind it."""

    name: str
    synopsis: str
    description: str
    parameters: tuple[Parameter, ...]
    handler: Callable[[Context, Bound], Sequence[Any] | Any] = field(repr=False)
    output_type: str | None = None
    default_set: str | None = None
    examples: tuple[Example, ...] = ()
    #: "Medium"/"High" for cmdlets that change state (-WhatIf and -Confirm); None for read-only ones.
    confirm_impact: Literal["Low", "Medium", "High"] | None = None
    #: What -WhatIf says would have happened: "Creating migration batch" + target.
    what_if: str = ""
    notes: str = ""

    @property
    def verb(self) -> str:
        """The verb part of the name."""
        return self.name.split("-", 1)[0]

    @property
    def supports_should_process(self) -> bool:
        """Whether the cmdlet takes -WhatIf and -Confirm."""
        return self.confirm_impact is not None

    @property
    def set_names(self) -> list[str]:
        """The named parameter sets, default first; ``[ALL_SETS]`` when the cmdlet has only one."""
        names: list[str] = []
        for parameter in self.parameters:
            for name in parameter.sets:
                if name != ALL_SETS and name not in names:
                    names.append(name)
        if self.default_set in names:
            names.remove(self.default_set)
            names.insert(0, self.default_set)
        return names or [ALL_SETS]

    def all_parameters(self) -> tuple[Parameter, ...]:
        """Its own parameters followed by the common ones (and -WhatIf/-Confirm where they apply)."""
        extra = SHOULD_PROCESS_PARAMETERS if self.supports_should_process else ()
        return self.parameters + extra + COMMON_PARAMETERS

    def parameter(self, name: str) -> Parameter | None:
        """The parameter with this exact name or alias (any case), or None."""
        wanted = name.lower()
        for parameter in self.all_parameters():
            if parameter.name.lower() == wanted or wanted in (a.lower() for a in parameter.aliases):
                return parameter
        return None


_ACTION = enum("ActionPreference", "System.Management.Automation.ActionPreference",
               ("SilentlyContinue", "Stop", "Continue", "Inquire", "Ignore", "Suspend", "Break"))

#: PowerShell's common parameters: accepted on every cmdlet (the doors act on them, the cmdlet ignores them).
COMMON_PARAMETERS: tuple[Parameter, ...] = (
    Parameter("Verbose", SWITCH, "Writes progress detail.", aliases=("vb",)),
    Parameter("Debug", SWITCH, "Writes debugging detail.", aliases=("db",)),
    Parameter("ErrorAction", _ACTION, "What to do on an error.", aliases=("ea",)),
    Parameter("WarningAction", _ACTION, "What to do on a warning.", aliases=("wa",)),
    Parameter("InformationAction", _ACTION, "What to do with information messages.", aliases=("infa",)),
    Parameter("ErrorVariable", STRING, "Variable that collects errors.", aliases=("ev",)),
    Parameter("WarningVariable", STRING, "Variable that collects warnings.", aliases=("wv",)),
    Parameter("InformationVariable", STRING, "Variable that collects information messages.", aliases=("iv",)),
    Parameter("OutVariable", STRING, "Variable that collects the output.", aliases=("ov",)),
    Parameter("OutBuffer", INT32, "Objects to buffer before passing them on.", aliases=("ob",)),
    Parameter("PipelineVariable", STRING, "Variable holding the current pipeline object.", aliases=("pv",)),
)

#: -WhatIf and -Confirm, on cmdlets that change state.
SHOULD_PROCESS_PARAMETERS: tuple[Parameter, ...] = (
    Parameter("WhatIf", SWITCH, "Shows what the command would do without doing it.", aliases=("wi",)),
    Parameter("Confirm", SWITCH, "Asks for confirmation first. Mailshift sessions are not interactive: "
                                 "-Confirm:$false is accepted, and -Confirm alone is treated the same way.",
              aliases=("cf",)),
)

