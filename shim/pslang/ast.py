"""The syntax tree of the PowerShell subset: frozen dataclasses, one per construct.

Every node carries an :class:`Extent` (where it was written) so errors can point at it the
way PowerShell's console does (``At line:1 char:1`` and a ``~~~~`` underline).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ArrayExpression",
    "ArrayLiteral",
    "Assignment",
    "Binary",
    "Break",
    "Cast",
    "CatchClause",
    "CmdArg",
    "CmdParam",
    "CmdSplat",
    "Command",
    "CommandElementNode",
    "Constant",
    "Continue",
    "DoLoop",
    "ExpandableString",
    "Exit",
    "Expr",
    "Extent",
    "For",
    "ForEach",
    "FunctionDef",
    "HashLiteral",
    "If",
    "Index",
    "Invoke",
    "Member",
    "Param",
    "Paren",
    "Pipeline",
    "Return",
    "Script",
    "ScriptBlockExpr",
    "Statement",
    "SubExpression",
    "Throw",
    "Try",
    "TypeLiteral",
    "Unary",
    "Variable",
    "While",
]


@dataclass(frozen=True)
class Extent:
    """A span of the source text (offsets into ``source``)."""

    source: str = field(repr=False)
    start: int
    end: int

    @property
    def line(self) -> int:
        """1-based line number of the start."""
        return self.source.count("\n", 0, self.start) + 1

    @property
    def column(self) -> int:
        """1-based column of the start."""
        return self.start - (self.source.rfind("\n", 0, self.start) + 1) + 1

    @property
    def text(self) -> str:
        """The source text of the span."""
        return self.source[self.start : self.end]

    def line_text(self) -> str:
        """The whole source line the span starts on (without the line break)."""
        begin = self.source.rfind("\n", 0, self.start) + 1
        stop = self.source.find("\n", self.start)
        return self.source[begin : stop if stop >= 0 else len(self.source)].rstrip("\r")


# -- expressions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expr:
    """Base of expression nodes."""

    extent: Extent


@dataclass(frozen=True)
class Constant(Expr):
    """A literal value: number, single-quoted string, bare word, ``$true``/``$false``/``$null``."""

    value: Any


@dataclass(frozen=True)
class ExpandableString(Expr):
    """A double-quoted string (or a bare word with ``$``): literal text and embedded expressions."""

    parts: tuple[str | Expr, ...]


@dataclass(frozen=True)
class Variable(Expr):
    """``$name`` (scope prefixes ``script:``/``global:``/``local:``/``private:`` removed)."""

    name: str
    scope: str = ""


@dataclass(frozen=True)
class SubExpression(Expr):
    """``$( statements )``."""

    body: tuple[Statement, ...]


@dataclass(frozen=True)
class ArrayExpression(Expr):
    """``@( statements )``: always an array."""

    body: tuple[Statement, ...]


@dataclass(frozen=True)
class Paren(Expr):
    """``( pipeline )``."""

    pipeline: Statement


@dataclass(frozen=True)
class HashLiteral(Expr):
    """``@{ key = value; ... }`` (``ordered`` when cast with ``[ordered]``)."""

    pairs: tuple[tuple[Expr, Statement], ...]


@dataclass(frozen=True)
class ArrayLiteral(Expr):
    """``a, b, c``."""

    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Param:
    """One parameter of a function or script block ``param(...)``."""

    name: str
    type_name: str | None
    default: Expr | None


@dataclass(frozen=True)
class ScriptBlockExpr(Expr):
    """``{ statements }`` with an optional ``param(...)`` block."""

    params: tuple[Param, ...]
    body: tuple[Statement, ...]


@dataclass(frozen=True)
class TypeLiteral(Expr):
    """``[TypeName]`` written on its own (``-is [string]``, ``[System.IO.File]::...``)."""

    name: str


@dataclass(frozen=True)
class Cast(Expr):
    """``[TypeName] operand``."""

    type_name: str
    operand: Expr


@dataclass(frozen=True)
class Member(Expr):
    """``target.Name`` or ``[Type]::Name``."""

    target: Expr
    name: str
    static: bool = False


@dataclass(frozen=True)
class Invoke(Expr):
    """``target.Name(args)`` or ``[Type]::Name(args)``."""

    target: Expr
    name: str
    args: tuple[Expr, ...]
    static: bool = False


@dataclass(frozen=True)
class Index(Expr):
    """``target[index]``."""

    target: Expr
    index: Expr


@dataclass(frozen=True)
class Unary(Expr):
    """A unary operator: ``-not ! - + , -split -join ++x --x x++ x--``."""

    op: str
    operand: Expr


@dataclass(frozen=True)
class Binary(Expr):
    """A binary operator (name without dash, lower case; ``case_sensitive`` for ``-c...`` forms)."""

    op: str
    left: Expr
    right: Expr
    case_sensitive: bool = False


# -- statements -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    """Base of statement nodes."""

    extent: Extent


@dataclass(frozen=True)
class CmdParam:
    """``-Name`` or ``-Name:value`` in a command call."""

    name: str
    value: Expr | None
    extent: Extent


@dataclass(frozen=True)
class CmdArg:
    """An argument value in a command call."""

    value: Expr


@dataclass(frozen=True)
class CmdSplat:
    """``@name`` in a command call."""

    variable: str
    extent: Extent


CommandElementNode = CmdParam | CmdArg | CmdSplat


@dataclass(frozen=True)
class Command(Statement):
    """A command call; ``invocation`` is ``&`` or ``.`` when written with a call operator."""

    name: str
    elements: tuple[CommandElementNode, ...]
    name_extent: Extent
    invocation: str = ""
    name_expr: Expr | None = None


@dataclass(frozen=True)
class Pipeline(Statement):
    """``element | command | command``; the first element may be an expression."""

    elements: tuple[Expr | Command, ...]
    discard_output: bool = False
    discard_errors: bool = False


@dataclass(frozen=True)
class Assignment(Statement):
    """``target = value`` and the compound forms (``op`` is ``=``, ``+=``, ``-=``, ...)."""

    target: Expr
    op: str
    value: Statement


@dataclass(frozen=True)
class If(Statement):
    """``if (c) {} elseif (c) {} else {}``."""

    clauses: tuple[tuple[Statement, tuple[Statement, ...]], ...]
    else_body: tuple[Statement, ...] | None


@dataclass(frozen=True)
class ForEach(Statement):
    """``foreach ($x in collection) {}``."""

    variable: str
    collection: Statement
    body: tuple[Statement, ...]


@dataclass(frozen=True)
class For(Statement):
    """``for (init; condition; iterator) {}``."""

    init: Statement | None
    condition: Statement | None
    iterator: Statement | None
    body: tuple[Statement, ...]


@dataclass(frozen=True)
class While(Statement):
    """``while (condition) {}``."""

    condition: Statement
    body: tuple[Statement, ...]


@dataclass(frozen=True)
class DoLoop(Statement):
    """``do {} while (c)`` or ``do {} until (c)``."""

    body: tuple[Statement, ...]
    condition: Statement
    until: bool


@dataclass(frozen=True)
class CatchClause:
    """``catch [Type1], [Type2] { }`` (no types: catches everything)."""

    types: tuple[str, ...]
    body: tuple[Statement, ...]


@dataclass(frozen=True)
class Try(Statement):
    """``try {} catch {} finally {}``."""

    body: tuple[Statement, ...]
    catches: tuple[CatchClause, ...]
    finally_body: tuple[Statement, ...] | None


@dataclass(frozen=True)
class Throw(Statement):
    """``throw`` or ``throw value``."""

    value: Statement | None


@dataclass(frozen=True)
class Return(Statement):
    """``return`` or ``return value``."""

    value: Statement | None


@dataclass(frozen=True)
class Exit(Statement):
    """``exit`` or ``exit code``."""

    value: Statement | None


@dataclass(frozen=True)
class Break(Statement):
    """``break``."""


@dataclass(frozen=True)
class Continue(Statement):
    """``continue``."""


@dataclass(frozen=True)
class FunctionDef(Statement):
    """``function Name { param(...) ... }`` or ``function Name($a, $b) { ... }``."""

    name: str
    params: tuple[Param, ...]
    body: tuple[Statement, ...]


@dataclass(frozen=True)
class Script:
    """A parsed script: its statements and its text."""

    statements: tuple[Statement, ...]
    text: str
