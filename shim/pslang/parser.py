"""A hand-written parser for the PowerShell subset, with PowerShell's two parsing modes.

PowerShell reads a pipeline element in *command mode* when it starts with a command name:
arguments are then bare words (``imap.contoso.edu``, ``Identity``), numbers when the whole
word is a number (``143``), parameter tokens (``-Name``, ``-Confirm:$false``), strings,
variables and parenthesised expressions, and a comma joins arguments into one array
(``Select-Object Identity, Status``). Everything else - a statement starting with ``$``, a
number, a string, ``(``, ``@(``, ``[type]`` - is read in *expression mode*, where operators
(``-eq``, ``+``, ``-f``) apply and bare words are errors. The parser works directly on the
characters, because which tokens exist depends on the mode.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from shim.errors import ScriptRefused
from shim.pslang import ast
from shim.pslang.ast import Expr, Extent, Statement
from shim.pslang.limits import MAX_NESTING_DEPTH
from shim.pslang.records import PSParseError

__all__ = ["parse"]

_NUMBER = re.compile(
    r"(?:0[xX][0-9a-fA-F]+|(?:\d+\.\d+|\d+|\.\d+)(?:[eE][+-]?\d+)?)(?P<type>[lLdD])?(?P<mult>(?i:kb|mb|gb|tb|pb))?"
)
_WHOLE_NUMBER = re.compile(r"[+-]?" + _NUMBER.pattern + r"\Z")
_IDENT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_VAR_SCOPES = ("script", "global", "local", "private", "env", "variable", "using")
_KEYWORDS = frozenset(
    "if elseif else foreach for while do until try catch finally throw return break continue exit function filter "
    "switch trap param begin process end data class enum using workflow dynamicparam".split()
)
_REFUSED_KEYWORDS = {
    "switch": "The 'switch' statement is not supported in a Mailshift session; use if/elseif instead.",
    "trap": "The 'trap' statement is not supported in a Mailshift session; use try/catch instead.",
    "class": "Class definitions are not allowed in a Mailshift session.",
    "enum": "Enum definitions are not allowed in a Mailshift session.",
    "using": "'using' statements are not allowed in a Mailshift session.",
    "workflow": "Workflows are not allowed in a Mailshift session.",
    "data": "'data' sections are not supported in a Mailshift session.",
    "filter": "Filter definitions are not supported in a Mailshift session; use a function.",
}
_COMPARISON = frozenset(
    "eq ne gt ge lt le like notlike match notmatch contains notcontains in notin replace".split()
)
_OTHER_BINARY = frozenset(["split", "join", "is", "isnot", "as"])
_ESCAPES = {"0": "\0", "a": "\a", "b": "\b", "e": "\x1b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_ASSIGN_OPS = ("+=", "-=", "*=", "/=", "%=", "=")
_ARG_STOP = frozenset(" \t\r\n;|(){},\u00a0&")
_PARAM_CHARS = _IDENT_CHARS | frozenset("?-")
#: What ``peek`` returns past the end of the text (never part of a script).
_EOF = "\x00"
#: Digits of the longest integer literal kept exact (System.Decimal's range); longer ones are doubles.
_MAX_EXACT_DIGITS = 28
#: Hex digits of the longest hexadecimal literal (Int64).
_MAX_HEX_DIGITS = 16

_P = ParamSpec("_P")
_T = TypeVar("_T")


def parse(text: str) -> ast.Script:
    """Parse script text.

    Args:
        text: PowerShell script text.

    Returns:
        The syntax tree.

    Raises:
        PSParseError: (a :class:`shim.errors.ParseError`) with line and column when the text
            is not valid in the subset.
        ScriptRefused: for constructs the subset refuses outright (``switch``, ``class``...).
    """
    parser = _Parser(text)
    statements = parser.statements(None)
    return ast.Script(tuple(statements), text)


def _nests(method: Callable[Concatenate[_Parser, _P], _T]) -> Callable[Concatenate[_Parser, _P], _T]:
    """Count ``method`` as one level of nesting; past :data:`MAX_NESTING_DEPTH` it is a parse error."""

    def nested(parser: _Parser, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        if parser.depth >= MAX_NESTING_DEPTH:
            raise parser.error(
                f"The script nests parentheses, blocks, arrays or operators more than {MAX_NESTING_DEPTH} levels deep; "
                "write it with fewer levels (assign inner values to variables).",
                "ScriptNestedTooDeeply",
            )
        parser.depth += 1
        try:
            return method(parser, *args, **kwargs)
        finally:
            parser.depth -= 1

    nested.__doc__ = method.__doc__
    return nested


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.n = len(text)
        self.comma_ok = True
        #: Nesting levels open at the cursor (see :func:`_nests`).
        self.depth = 0

    # -- small helpers ---------------------------------------------------------------------

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.s[j] if j < self.n else _EOF

    def extent(self, start: int, end: int | None = None) -> Extent:
        return Extent(self.s, start, self.i if end is None else end)

    def error(self, reason: str, error_id: str = "UnexpectedToken", at: int | None = None) -> PSParseError:
        start = self.i if at is None else at
        return PSParseError(reason, Extent(self.s, start, min(self.n, start + 1) if start < self.n else start), error_id)

    def skip(self, newlines: bool = False) -> None:
        s, n = self.s, self.n
        while self.i < n:
            c = s[self.i]
            if c in " \t\f\v\u00a0":
                self.i += 1
            elif c == "`" and self.i + 1 < n and s[self.i + 1] in "\r\n":
                self.i += 2
                if s[self.i - 1] == "\r" and self.peek() == "\n":
                    self.i += 1
            elif c == "`" and self.i + 1 >= n:
                raise self.incomplete_backtick()
            elif c == "#":
                while self.i < n and s[self.i] not in "\r\n":
                    self.i += 1
            elif c == "<" and self.peek(1) == "#":
                end = s.find("#>", self.i + 2)
                if end < 0:
                    raise self.error("The comment block is missing its closing '#>'.", "MissingEndOfComment")
                self.i = end + 2
            elif newlines and c in "\r\n":
                self.i += 1
            else:
                break

    def incomplete_backtick(self) -> PSParseError:
        """PowerShell's error for a backtick with nothing after it (the end of the text)."""
        return self.error("Incomplete string token.", "IncompleteString")

    def expect(self, char: str, reason: str, error_id: str) -> None:
        if self.peek() != char:
            raise self.error(reason, error_id)
        self.i += 1

    def at_statement_end(self) -> bool:
        return self.peek() in (_EOF, "\n", "\r", ";", ")", "}")

    def keyword_at(self) -> str | None:
        j = self.i
        while j < self.n and self.s[j].isalpha():
            j += 1
        word = self.s[self.i : j].lower()
        if word in _KEYWORDS and (j >= self.n or self.s[j] not in _IDENT_CHARS | {"-", ".", ":", "\\"}):
            return word
        return None

    def take_keyword(self, word: str) -> bool:
        if self.keyword_at() == word:
            self.i += len(word)
            return True
        return False

    # -- statements --------------------------------------------------------------------------

    def statements(self, terminator: str | None, opened_at: int | None = None) -> list[Statement]:
        result: list[Statement] = []
        while True:
            self.skip(newlines=True)
            while self.peek() == ";":
                self.i += 1
                self.skip(newlines=True)
            c = self.peek()
            if c == _EOF:
                if terminator is not None:
                    missing = "Missing closing '}' in statement block or type definition." if terminator == "}" else (
                        "Missing closing ')' in expression."
                    )
                    at = opened_at if terminator == "}" else None
                    raise self.error(missing, "MissingEndCurlyBrace" if terminator == "}" else "MissingEndParenthesisInExpression", at)
                return result
            if c == terminator:
                return result
            if c in ")}":
                raise self.error(f"Unexpected token '{c}' in expression or statement.")
            result.append(self.statement())
            self.skip()
            c = self.peek()
            if c in (_EOF, "\n", "\r", ";") or c == terminator:
                continue
            raise self.error(f"Unexpected token '{self._token_preview()}' in expression or statement.")

    def _token_preview(self) -> str:
        m = re.compile(r"\S+").match(self.s, self.i)
        return m.group(0)[:40] if m else self.peek()

    @_nests
    def block(self) -> tuple[Statement, ...]:
        self.skip(newlines=True)
        if self.peek() != "{":
            raise self.error("Missing statement block.", "MissingStatementBlock")
        opened_at = self.i
        self.i += 1
        saved = self.comma_ok
        self.comma_ok = True
        body = self.statements("}", opened_at)
        self.comma_ok = saved
        self.i += 1
        return tuple(body)

    def paren_condition(self, what: str) -> Statement:
        self.skip()
        if self.peek() != "(":
            raise self.error(f"Missing '(' after '{what}' in {what} statement.", "MissingOpenParenthesisInIfStatement")
        self.i += 1
        self.skip(newlines=True)
        saved = self.comma_ok
        self.comma_ok = True
        cond = self.pipeline()
        self.comma_ok = saved
        self.skip(newlines=True)
        self.expect(")", f"Missing closing ')' after expression in '{what}' statement.", "MissingEndParenthesisAfterStatement")
        return cond

    def statement(self) -> Statement:
        start = self.i
        word = self.keyword_at()
        if word is None:
            return self.pipeline()
        if word in _REFUSED_KEYWORDS:
            raise ScriptRefused(_REFUSED_KEYWORDS[word], error_id="LanguageNotSupported")
        self.i += len(word)
        if word == "if":
            clauses: list[tuple[Statement, tuple[Statement, ...]]] = []
            cond = self.paren_condition("if")
            clauses.append((cond, self.block()))
            else_body: tuple[Statement, ...] | None = None
            while True:
                save = self.i
                self.skip(newlines=True)
                if self.take_keyword("elseif"):
                    cond = self.paren_condition("elseif")
                    clauses.append((cond, self.block()))
                    continue
                if self.take_keyword("else"):
                    self.skip()
                    if self.take_keyword("if"):
                        cond = self.paren_condition("if")
                        clauses.append((cond, self.block()))
                        continue
                    else_body = self.block()
                self.i = save if else_body is None else self.i
                break
            return ast.If(self.extent(start), tuple(clauses), else_body)
        if word == "foreach":
            self.skip()
            self.expect("(", "Missing opening '(' after keyword 'foreach'.", "MissingOpenParenthesisAfterKeyword")
            self.skip(newlines=True)
            if self.peek() != "$":
                raise self.error("Missing variable name after foreach.", "MissingVariableNameAfterForeach")
            var = self.primary()
            if not isinstance(var, ast.Variable):
                raise self.error("Missing variable name after foreach.", "MissingVariableNameAfterForeach")
            self.skip(newlines=True)
            if not self.take_keyword_plain("in"):
                raise self.error("Missing 'in' after variable in foreach loop.", "MissingInInForeach")
            self.skip(newlines=True)
            collection = self.pipeline()
            self.skip(newlines=True)
            self.expect(")", "Missing closing ')' after expression in 'foreach' statement.", "MissingEndParenthesisAfterForeach")
            return ast.ForEach(self.extent(start), var.name, collection, self.block())
        if word == "for":
            self.skip()
            self.expect("(", "Missing opening '(' after keyword 'for'.", "MissingOpenParenthesisAfterKeyword")
            parts: list[Statement | None] = []
            for closer in (";", ";", ")"):
                self.skip(newlines=True)
                part: Statement | None = None
                if self.peek() != closer:
                    part = self.pipeline()
                    self.skip(newlines=True)
                parts.append(part)
                self.expect(closer, f"Missing '{closer}' in the 'for' statement.", "MissingForLoopPart")
            return ast.For(self.extent(start), parts[0], parts[1], parts[2], self.block())
        if word == "while":
            cond = self.paren_condition("while")
            return ast.While(self.extent(start), cond, self.block())
        if word == "do":
            body = self.block()
            self.skip(newlines=True)
            if self.take_keyword("while"):
                until = False
            elif self.take_keyword("until"):
                until = True
            else:
                raise self.error("Missing 'while' or 'until' in do loop.", "MissingWhileOrUntilInDoWhile")
            cond = self.paren_condition("while")
            return ast.DoLoop(self.extent(start), body, cond, until)
        if word == "try":
            body = self.block()
            catches: list[ast.CatchClause] = []
            finally_body: tuple[Statement, ...] | None = None
            while True:
                save = self.i
                self.skip(newlines=True)
                if self.take_keyword("catch"):
                    types: list[str] = []
                    self.skip()
                    while self.peek() == "[":
                        types.append(self.type_name())
                        self.skip()
                        if self.peek() == ",":
                            self.i += 1
                            self.skip(newlines=True)
                    catches.append(ast.CatchClause(tuple(types), self.block()))
                    continue
                if self.take_keyword("finally"):
                    finally_body = self.block()
                else:
                    self.i = save
                break
            if not catches and finally_body is None:
                raise self.error("The Try statement is missing its Catch or Finally block.", "MissingCatchOrFinally")
            return ast.Try(self.extent(start), body, tuple(catches), finally_body)
        if word in ("throw", "return", "exit"):
            self.skip()
            value = None if self.at_statement_end() or self.peek() == "|" else self.pipeline()
            node = {"throw": ast.Throw, "return": ast.Return, "exit": ast.Exit}[word]
            return node(self.extent(start), value)
        if word == "break":
            self._skip_label()
            return ast.Break(self.extent(start))
        if word == "continue":
            self._skip_label()
            return ast.Continue(self.extent(start))
        if word == "function":
            return self.function(start)
        if word == "param":
            raise self.error("A param block is only allowed at the start of a script block or function.", "ParamBlockNotFirst", start)
        raise self.error(f"Unexpected keyword '{word}'.", "UnexpectedKeyword", start)

    def _skip_label(self) -> None:
        self.skip()
        m = re.compile(r"[A-Za-z_]\w*").match(self.s, self.i)
        if m:
            self.i = m.end()

    def take_keyword_plain(self, word: str) -> bool:
        end = self.i + len(word)
        if self.s[self.i : end].lower() == word and (end >= self.n or self.s[end] not in _IDENT_CHARS):
            self.i = end
            return True
        return False

    def function(self, start: int) -> Statement:
        self.skip()
        m = re.compile(r"[A-Za-z_][\w\-.]*").match(self.s, self.i)
        if not m:
            raise self.error("Missing name after the function keyword.", "MissingNameAfterKeyword")
        name = m.group(0)
        self.i = m.end()
        self.skip()
        params: tuple[ast.Param, ...] = ()
        if self.peek() == "(":
            params = self.param_list()
            self.skip(newlines=True)
        body_block = self.script_block()
        return ast.FunctionDef(self.extent(start), name, params or body_block.params, body_block.body)

    def param_list(self) -> tuple[ast.Param, ...]:
        self.expect("(", "Missing '(' in parameter list.", "MissingOpenParenthesis")
        params: list[ast.Param] = []
        while True:
            self.skip(newlines=True)
            if self.peek() == ")":
                self.i += 1
                return tuple(params)
            type_name: str | None = None
            while self.peek() == "[":
                name = self.type_name()
                if self.peek() == "(":  # an attribute such as [Parameter(Mandatory = $true)]
                    self._skip_balanced("(", ")")
                    self.expect("]", "Missing ']' after attribute.", "EndSquareBracketExpectedAtEndOfAttribute")
                elif name.lower() not in ("cmdletbinding", "parameter", "validatenotnullorempty", "alias"):
                    type_name = name
                self.skip(newlines=True)
            if self.peek() != "$":
                raise self.error("Missing parameter variable in the parameter list.", "InvalidFunctionParameter")
            var = self.primary()
            if not isinstance(var, ast.Variable):
                raise self.error("Invalid parameter name.", "InvalidFunctionParameter")
            self.skip(newlines=True)
            default: Expr | None = None
            if self.peek() == "=":
                self.i += 1
                self.skip(newlines=True)
                saved = self.comma_ok
                self.comma_ok = False
                default = self.expression()
                self.comma_ok = saved
                self.skip(newlines=True)
            params.append(ast.Param(var.name, type_name, default))
            if self.peek() == ",":
                self.i += 1
            elif self.peek() != ")":
                raise self.error("Missing ')' in function parameter list.", "MissingEndParenthesisInFunctionParameterList")

    def _skip_balanced(self, opener: str, closer: str) -> None:
        depth = 0
        while self.i < self.n:
            c = self.s[self.i]
            if c in "'\"":
                self.string_literal()
                continue
            self.i += 1
            if c == opener:
                depth += 1
            elif c == closer:
                depth -= 1
                if depth == 0:
                    return
        raise self.error(f"Missing closing '{closer}'.", "MissingEndParenthesis")

    # -- pipelines and commands ----------------------------------------------------------------

    def pipeline(self) -> Statement:
        start = self.i
        elements: list[Expr | ast.Command] = []
        if self.starts_expression():
            expr = self.expression()
            self.skip()
            for op in _ASSIGN_OPS:
                if self.s.startswith(op, self.i) and not self.s.startswith("==", self.i):
                    discard = isinstance(expr, ast.Constant) and expr.value is None and expr.extent.text.lower() == "$null"
                    if not discard and not isinstance(expr, (ast.Variable, ast.Member, ast.Index, ast.Cast)):
                        raise self.error("The assignment expression is not valid.", "InvalidLeftHandSide", start)
                    self.i += len(op)
                    self.skip(newlines=True)
                    word = self.keyword_at()
                    if word in ("if", "foreach", "for", "while", "do", "try"):
                        value = self.statement()
                    else:
                        value = self.pipeline()
                    return ast.Assignment(self.extent(start), expr, op, value)
            elements.append(expr)
        else:
            elements.append(self.command())
        discard_output = discard_errors = False
        while True:
            self.skip()
            redirect = self.redirection()
            if redirect is not None:
                discard_output = discard_output or redirect == "out"
                discard_errors = discard_errors or redirect == "err"
                continue
            if self.peek() == "|" and self.peek(1) != "|":
                self.i += 1
                self.skip(newlines=True)
                if self.at_statement_end() or self.peek() == "|":
                    raise self.error("An empty pipe element is not allowed.", "EmptyPipeElement")
                elements.append(self.command())
                continue
            break
        return ast.Pipeline(self.extent(start), tuple(elements), discard_output, discard_errors)

    def redirection(self) -> str | None:
        m = re.compile(r"([*1-6])?>>?(&[12])?").match(self.s, self.i)
        if not m:
            return None
        start = self.i
        self.i = m.end()
        stream = m.group(1) or "1"
        if m.group(2):
            return "merge"
        self.skip()
        if self.s[self.i : self.i + 5].lower() == "$null" and self.s[self.i + 5 : self.i + 6] not in _IDENT_CHARS:
            self.i += 5
            return "out" if stream in "1*" else "err"
        raise ScriptRefused(
            "Redirecting output to a file is not allowed in a Mailshift session (only '> $null' and '2>&1').",
            error_id="RedirectionNotAllowed",
            target=self.s[start : self.i],
        )

    def starts_expression(self) -> bool:
        c, d = self.peek(), self.peek(1)
        if c in "$(@'\"[!,{" or c.isdigit() or c in "\u2018\u2019\u201c\u201d":
            return True
        if c == "." and d.isdigit():
            return True
        if c in "-+" and (d.isdigit() or (d == "." and self.peek(2).isdigit())):
            return True
        if c == "-":
            m = re.compile(r"-(not|bnot|split|join)\b", re.I).match(self.s, self.i)
            return m is not None
        return False

    def command(self) -> ast.Command:
        start = self.i
        invocation = ""
        name_expr: Expr | None = None
        if self.peek() in "&." and (self.peek() == "&" or self.peek(1) in " \t"):
            invocation = self.peek()
            self.i += 1
            self.skip()
            name_start = self.i
            name_expr = self.command_arg_element()
            name = name_expr.value if isinstance(name_expr, ast.Constant) and isinstance(name_expr.value, str) else ""
        else:
            name_start = self.i
            name = self.generic_word()
            if not name:
                raise self.error(f"Unexpected token '{self._token_preview()}' in expression or statement.")
        name_extent = self.extent(name_start)
        elements: list[ast.CommandElementNode] = []
        params_ended = False
        end = self.i
        while True:
            end = self.i
            self.skip()
            c = self.peek()
            if c in (_EOF, "\n", "\r", ";", "|", ")", "}"):
                break
            if c == "&":
                raise self.error("The ampersand (&) character is not allowed here; '&&' is not supported in Windows PowerShell 5.1.", "AmpersandNotAllowed")
            if self.redirection_ahead():
                break
            if c == "-" and not params_ended and (self.peek(1).isalpha() or self.peek(1) in "_?"):
                p_start = self.i
                self.i += 1
                j = self.i
                while j < self.n and self.s[j] in _PARAM_CHARS:
                    j += 1
                pname = self.s[self.i : j]
                self.i = j
                if self.peek() == ":":
                    self.i += 1
                    self.skip()
                    value = self.command_argument()
                    elements.append(ast.CmdParam(pname, value, self.extent(p_start)))
                else:
                    elements.append(ast.CmdParam(pname, None, self.extent(p_start)))
                continue
            if c == "-" and self.peek(1) == "-" and self.peek(2) in " \t\r\n":
                self.i += 2
                params_ended = True
                continue
            if c == "@" and (self.peek(1) in _IDENT_CHARS):
                s_start = self.i
                self.i += 1
                j = self.i
                while j < self.n and self.s[j] in _IDENT_CHARS:
                    j += 1
                elements.append(ast.CmdSplat(self.s[self.i : j], self.extent(s_start, j)))
                self.i = j
                continue
            before = self.i
            elements.append(ast.CmdArg(self.command_argument()))
            if self.i == before:
                raise self.error(f"Unexpected token '{self._token_preview()}' in expression or statement.")
        self.i = end
        return ast.Command(self.extent(start), name, tuple(elements), name_extent, invocation, name_expr)

    def redirection_ahead(self) -> bool:
        return re.compile(r"([*1-6])?>").match(self.s, self.i) is not None

    def generic_word(self) -> str:
        """A command name: everything up to whitespace or a special character."""
        j = self.i
        while j < self.n and self.s[j] not in _ARG_STOP and self.s[j] not in "'\"$":
            j += 1
        word = self.s[self.i : j]
        self.i = j
        return word

    def command_argument(self) -> Expr:
        start = self.i
        return self.comma_list(start, self.command_arg_element(), self.command_arg_element)

    def comma_list(self, start: int, first: Expr, element: Callable[[], Expr]) -> Expr:
        """``first``, then ``, element`` as long as commas follow: one array, or ``first`` alone."""
        items = [first]
        while True:
            save = self.i
            self.skip()
            if self.peek() != ",":
                self.i = save
                break
            self.i += 1
            self.skip(newlines=True)
            items.append(element())
        if len(items) == 1:
            return first
        return ast.ArrayLiteral(self.extent(start), tuple(items))

    def command_arg_element(self) -> Expr:
        c, d = self.peek(), self.peek(1)
        if c == "$" or c == "(" or (c == "@" and d in "({"):
            return self.postfix(self.primary())
        if c == "@" and d in "'\"":
            return self.primary()
        if c in "'\"\u2018\u2019\u201c\u201d":
            return self.string_literal()
        if c == "{":
            return self.script_block()
        if c in (_EOF, "\n", "\r", ";", "|", ")", "}", ","):
            raise self.error("Missing argument in parameter list.", "MissingArgument")
        return self.bare_word()

    def bare_word(self) -> Expr:
        """A command-mode argument word: a number when it is one, else a (possibly expandable) string."""
        start = self.i
        parts: list[str | Expr] = []
        text: list[str] = []
        while self.i < self.n:
            c = self.s[self.i]
            if c in _ARG_STOP:
                break
            if c == "`":
                if self.i + 1 >= self.n:
                    raise self.incomplete_backtick()
                if self.s[self.i + 1] not in "\r\n":
                    text.append(self.s[self.i + 1])
                    self.i += 2
                    continue
                break
            if c in "'\"":
                node = self.string_literal()
                if isinstance(node, ast.Constant):
                    text.append(str(node.value))
                else:
                    if text:
                        parts.append("".join(text))
                        text = []
                    parts.extend(node.parts if isinstance(node, ast.ExpandableString) else [node])
                continue
            if c == "$" and self.i + 1 < self.n and (self.s[self.i + 1] in _IDENT_CHARS | set("({?")):
                if text:
                    parts.append("".join(text))
                    text = []
                parts.append(self.postfix(self.primary()))
                continue
            text.append(c)
            self.i += 1
        if text:
            parts.append("".join(text))
        raw = self.s[start : self.i]
        ext = self.extent(start)
        if all(isinstance(p, str) for p in parts):
            word = "".join(p for p in parts if isinstance(p, str))
            number = number_value(raw) if _WHOLE_NUMBER.match(raw) else None
            if number is not None and not (isinstance(number, float) and math.isinf(number)):
                return ast.Constant(ext, number)
            return ast.Constant(ext, word)
        return ast.ExpandableString(ext, tuple(parts))

    # -- expressions -------------------------------------------------------------------------

    def named_op(self) -> tuple[str, bool, int] | None:
        """The ``-operator`` at the cursor: (name, case_sensitive, length), without consuming it."""
        if self.peek() not in "-\u2013\u2014":
            return None
        j = self.i + 1
        while j < self.n and self.s[j].isalpha():
            j += 1
        word = self.s[self.i + 1 : j].lower()
        if not word or (j < self.n and self.s[j] in _IDENT_CHARS):
            return None
        case = False
        base = word
        if len(word) > 2 and word[0] in "ci" and word[1:] in _COMPARISON | {"split"}:
            case = word[0] == "c"
            base = word[1:]
        return base, case, j - self.i

    def binary_level(self, ops: frozenset[str], operand: Callable[[], Expr]) -> Expr:
        start = self.i
        left = operand()
        while True:
            save = self.i
            self.skip()
            op = self.named_op()
            if op is None or op[0] not in ops:
                self.i = save
                return left
            self.i += op[2]
            self.skip(newlines=True)
            right = operand()
            left = ast.Binary(self.extent(start), op[0], left, right, op[1])

    def expression(self) -> Expr:
        return self.binary_level(frozenset(["and", "or", "xor"]), self.bitwise)

    def bitwise(self) -> Expr:
        return self.binary_level(frozenset(["band", "bor", "bxor"]), self.comparison)

    def comparison(self) -> Expr:
        return self.binary_level(_COMPARISON | _OTHER_BINARY, self.additive)

    def additive(self) -> Expr:
        return self.symbol_level("+-", self.multiplicative)

    def multiplicative(self) -> Expr:
        return self.symbol_level("*/%", self.format_expr)

    def symbol_level(self, symbols: str, operand: Callable[[], Expr]) -> Expr:
        start = self.i
        left = operand()
        while True:
            save = self.i
            self.skip()
            c = self.peek()
            if c not in symbols or self.peek(1) == "=" or (c in "+-" and self.peek(1) == c):
                self.i = save
                return left
            if c == "-" and (self.peek(1).isalpha()):
                self.i = save
                return left
            self.i += 1
            self.skip(newlines=True)
            right = operand()
            left = ast.Binary(self.extent(start), c, left, right)

    def format_expr(self) -> Expr:
        return self.binary_level(frozenset(["f"]), self.range_expr)

    def range_expr(self) -> Expr:
        start = self.i
        left = self.array_literal()
        while True:
            save = self.i
            self.skip()
            if not self.s.startswith("..", self.i):
                self.i = save
                return left
            self.i += 2
            self.skip(newlines=True)
            right = self.array_literal()
            left = ast.Binary(self.extent(start), "..", left, right)

    def array_literal(self) -> Expr:
        start = self.i
        first = self.unary()
        if not self.comma_ok:
            return first
        return self.comma_list(start, first, self.unary)

    @_nests
    def operand(self) -> Expr:
        """The operand of a unary operator or cast: one level deeper."""
        return self.unary()

    def unary(self) -> Expr:
        start = self.i
        c, d = self.peek(), self.peek(1)
        if c == "!":
            self.i += 1
            self.skip()
            return ast.Unary(self.extent(start), "-not", self.operand())
        if c == ",":
            self.i += 1
            self.skip(newlines=True)
            return ast.Unary(self.extent(start), ",", self.operand())
        if (c == "+" and d == "+") or (c == "-" and d == "-"):
            self.i += 2
            operand = self.operand()
            return ast.Unary(self.extent(start), "++" if c == "+" else "--", operand)
        if c in "-\u2013":
            op = self.named_op()
            if op is not None and op[0] in ("not", "split", "join", "bnot"):
                self.i += op[2]
                self.skip()
                return ast.Unary(self.extent(start), "-" + op[0], self.operand())
            if op is None or not d.isalpha():
                self.i += 1
                self.skip()
                operand = self.operand()
                if isinstance(operand, ast.Constant) and isinstance(operand.value, (int, float)) and not isinstance(operand.value, bool):
                    return ast.Constant(self.extent(start), -operand.value)
                return ast.Unary(self.extent(start), "-", operand)
        if c == "+" and d != "=":
            self.i += 1
            self.skip()
            return ast.Unary(self.extent(start), "+", self.operand())
        if c == "[":
            type_name = self.type_name()
            if self.s.startswith("::", self.i):
                return self.postfix(ast.TypeLiteral(self.extent(start), type_name))
            save = self.i
            self.skip()
            nc = self.peek()
            if nc and (nc in "$(@'\"[{" or nc.isdigit() or (nc in "-+" and self.peek(1).isdigit()) or nc == "!"):
                operand = self.operand()
                return ast.Cast(self.extent(start), type_name, operand)
            self.i = save
            return self.postfix(ast.TypeLiteral(self.extent(start), type_name))
        expr = self.postfix(self.primary())
        if self.s.startswith("++", self.i) or self.s.startswith("--", self.i):
            symbol = self.s[self.i : self.i + 2]
            self.i += 2
            return ast.Unary(self.extent(start), "post" + symbol, expr)
        return expr

    def type_name(self) -> str:
        start = self.i
        self.expect("[", "Missing '['.", "MissingTypename")
        depth = 1
        j = self.i
        while j < self.n and depth:
            if self.s[j] == "[":
                depth += 1
            elif self.s[j] == "]":
                depth -= 1
            elif self.s[j] in "\r\n" or (self.s[j] == "(" and depth == 1):
                break
            j += 1
        if depth and (j >= self.n or self.s[j] != "("):
            raise self.error("Missing ] at end of type token.", "EndSquareBracketExpectedAtEndOfType", start)
        if depth:  # attribute with arguments: caller handles '(' ... ')' ']'
            name = self.s[self.i : j].strip()
            self.i = j
            return name
        name = self.s[self.i : j - 1].strip()
        self.i = j
        if not name:
            raise self.error("Missing type name after '['.", "MissingTypename", start)
        return name

    def postfix(self, node: Expr) -> Expr:
        start = node.extent.start
        while True:
            c = self.peek()
            if c == "." and (self.peek(1).isalpha() or self.peek(1) == "_") or self.s.startswith("::", self.i):
                static = c == ":"
                self.i += 2 if static else 1
                m = re.compile(r"[A-Za-z_]\w*").match(self.s, self.i)
                if not m:
                    raise self.error("Missing property name after reference operator.", "MissingPropertyName")
                name = m.group(0)
                self.i = m.end()
                if self.peek() == "(":
                    self.i += 1
                    args = self.method_args()
                    node = ast.Invoke(self.extent(start), node, name, args, static)
                else:
                    node = ast.Member(self.extent(start), node, name, static)
                continue
            if c == "[" and not isinstance(node, ast.Constant):
                self.i += 1
                saved = self.comma_ok
                self.comma_ok = True
                self.skip(newlines=True)
                index = self.expression()
                self.skip(newlines=True)
                self.comma_ok = saved
                self.expect("]", "Array index expression is missing or not valid.", "MissingArrayIndexExpression")
                node = ast.Index(self.extent(start), node, index)
                continue
            return node

    def method_args(self) -> tuple[Expr, ...]:
        args: list[Expr] = []
        saved = self.comma_ok
        self.comma_ok = False
        self.skip(newlines=True)
        if self.peek() == ")":
            self.i += 1
            self.comma_ok = saved
            return ()
        while True:
            self.skip(newlines=True)
            args.append(self.expression())
            self.skip(newlines=True)
            if self.peek() == ",":
                self.i += 1
                continue
            self.expect(")", "Missing closing ')' in method call.", "MissingEndParenthesisInMethodCall")
            break
        self.comma_ok = saved
        return tuple(args)

    def primary(self) -> Expr:
        start = self.i
        c, d = self.peek(), self.peek(1)
        if c == "$":
            if d == "(":
                self.i += 2
                return ast.SubExpression(self.extent(start), tuple(self.nested_statements(")")))
            return self.variable()
        if c == "@":
            if d == "(":
                self.i += 2
                return ast.ArrayExpression(self.extent(start), tuple(self.nested_statements(")")))
            if d == "{":
                return self.hash_literal()
            if d in "'\"":
                return self.here_string()
            raise self.error("Unrecognized token in source text.", "UnrecognizedToken")
        if c == "(":
            return self.paren()
        if c in "'\"\u2018\u2019\u201c\u201d":
            return self.string_literal()
        if c == "{":
            return self.script_block()
        m = _NUMBER.match(self.s, self.i)
        if m and (c.isdigit() or c == "."):
            end = m.end()
            if end < self.n and self.s[end] in _IDENT_CHARS:
                raise self.error(f"Unexpected token '{self._token_preview()}' in expression or statement.", at=start)
            value = number_value(m.group(0))
            if isinstance(value, float) and math.isinf(value):
                raise self.error(f"Bad numeric constant: {m.group(0)[:40]}.", "BadNumericConstant", start)
            self.i = end
            return ast.Constant(self.extent(start), value)
        if c == _EOF:
            raise self.error("An expression was expected.", "ExpectedExpression")
        raise self.error(f"Unexpected token '{self._token_preview()}' in expression or statement.")

    @_nests
    def paren(self) -> Expr:
        start = self.i
        self.i += 1
        saved = self.comma_ok
        self.comma_ok = True
        self.skip(newlines=True)
        if self.peek() == ")":
            raise self.error("An expression was expected after '('.", "ExpectedExpression")
        word = self.keyword_at()
        inner = self.statement() if word in ("if", "foreach", "for", "while", "do", "try") else self.pipeline()
        self.skip(newlines=True)
        self.comma_ok = saved
        self.expect(")", "Missing closing ')' in expression.", "MissingEndParenthesisInExpression")
        return ast.Paren(self.extent(start), inner)

    @_nests
    def nested_statements(self, terminator: str) -> list[Statement]:
        saved = self.comma_ok
        self.comma_ok = True
        body = self.statements(terminator)
        self.comma_ok = saved
        self.i += 1
        return body

    def variable(self) -> Expr:
        start = self.i
        self.i += 1
        c = self.peek()
        if c == "{":
            end = self.s.find("}", self.i)
            if end < 0:
                raise self.error("Missing closing '}' of the variable name.", "MissingEndCurlyBrace", start)
            name = self.s[self.i + 1 : end]
            self.i = end + 1
            return self._variable_node(start, name)
        if c in "?^$":
            self.i += 1
            return ast.Variable(self.extent(start), c)
        j = self.i
        while j < self.n and self.s[j] in _IDENT_CHARS:
            j += 1
        name = self.s[self.i : j]
        if j < self.n and self.s[j] == ":" and name.lower() in _VAR_SCOPES and j + 1 < self.n and (
            self.s[j + 1] in _IDENT_CHARS or self.s[j + 1] == "{"
        ):
            j += 1
            k = j
            while k < self.n and self.s[k] in _IDENT_CHARS:
                k += 1
            name = self.s[self.i : k]
            j = k
        if not name:
            raise self.error("Invalid variable reference: '$' was not followed by a valid variable name character.", "InvalidVariableReference", start)
        self.i = j
        return self._variable_node(start, name)

    def _variable_node(self, start: int, name: str) -> Expr:
        lower = name.lower()
        if lower in ("true", "false", "null"):
            return ast.Constant(self.extent(start), {"true": True, "false": False, "null": None}[lower])
        scope = ""
        if ":" in name:
            scope, _, name = name.partition(":")
            scope = scope.lower()
        return ast.Variable(self.extent(start), name, scope)

    @_nests
    def hash_literal(self) -> Expr:
        start = self.i
        self.i += 2
        pairs: list[tuple[Expr, Statement]] = []
        saved = self.comma_ok
        self.comma_ok = True
        while True:
            self.skip(newlines=True)
            while self.peek() == ";":
                self.i += 1
                self.skip(newlines=True)
            if self.peek() == "}":
                self.i += 1
                break
            if self.peek() == _EOF:
                raise self.error("Missing closing '}' in hash literal.", "MissingEndCurlyBrace")
            k_start = self.i
            key: Expr
            if self.peek() in "'\"":
                key = self.string_literal()
            elif self.peek() in "$(":
                key = self.postfix(self.primary())
            else:
                m = re.compile(r"[^\s=;}]+").match(self.s, self.i)
                if not m:
                    raise self.error("Missing key before '=' in hash literal.", "MissingEqualsInHashLiteral")
                self.i = m.end()
                raw = m.group(0)
                key = ast.Constant(self.extent(k_start), number_value(raw) if _WHOLE_NUMBER.match(raw) else raw)
            self.skip()
            self.expect("=", "Missing '=' operator after key in hash literal.", "MissingEqualsInHashLiteral")
            self.skip(newlines=True)
            word = self.keyword_at()
            value = self.statement() if word in ("if", "foreach", "for", "while", "do", "try") else self.pipeline()
            pairs.append((key, value))
            self.skip()
            if self.peek() not in ("\n", "\r", ";", "}"):
                raise self.error("Missing statement after '=' in hash literal, or a missing ';' between entries.", "MissingStatementAfterAssignmentOperator")
        self.comma_ok = saved
        return ast.HashLiteral(self.extent(start), tuple(pairs))

    @_nests
    def script_block(self) -> ast.ScriptBlockExpr:
        start = self.i
        self.expect("{", "Missing '{'.", "MissingOpenBrace")
        saved = self.comma_ok
        self.comma_ok = True
        self.skip(newlines=True)
        params: tuple[ast.Param, ...] = ()
        while self.peek() == "[":  # [CmdletBinding()] before param()
            self.type_name()
            if self.peek() == "(":
                self._skip_balanced("(", ")")
                self.expect("]", "Missing ']' after attribute.", "EndSquareBracketExpectedAtEndOfAttribute")
            self.skip(newlines=True)
        if self.take_keyword("param"):
            self.skip()
            params = self.param_list()
        body = self.statements("}", start)
        self.i += 1
        self.comma_ok = saved
        return ast.ScriptBlockExpr(self.extent(start), params, tuple(body))

    # -- strings -------------------------------------------------------------------------------

    def string_literal(self) -> Expr:
        start = self.i
        q = self.peek()
        self.i += 1
        if q in "'\u2018\u2019":
            out: list[str] = []
            while True:
                if self.i >= self.n:
                    raise self.error("The string is missing the terminator: '.", "TerminatorExpectedAtEndOfString", start)
                c = self.s[self.i]
                if c in "'\u2018\u2019":
                    if self.peek(1) in ("'", "\u2018", "\u2019"):
                        out.append("'")
                        self.i += 2
                        continue
                    self.i += 1
                    break
                out.append(c)
                self.i += 1
            return ast.Constant(self.extent(start), "".join(out))
        parts = self.expandable_body(lambda: self.peek() in '"\u201c\u201d', start, doubled_quote=True)
        self.i += 1
        return self._string_node(start, parts)

    def _string_node(self, start: int, parts: list[str | Expr]) -> Expr:
        if all(isinstance(p, str) for p in parts):
            return ast.Constant(self.extent(start), "".join(p for p in parts if isinstance(p, str)))
        return ast.ExpandableString(self.extent(start), tuple(parts))

    def expandable_body(self, end_check: Callable[[], bool], start: int, doubled_quote: bool) -> list[str | Expr]:
        parts: list[str | Expr] = []
        text: list[str] = []
        while True:
            if self.i >= self.n:
                raise self.error('The string is missing the terminator: ".', "TerminatorExpectedAtEndOfString", start)
            c = self.s[self.i]
            if end_check():
                if doubled_quote and self.peek(1) in '"\u201c\u201d':
                    text.append('"')
                    self.i += 2
                    continue
                break
            if c == "`" and self.i + 1 < self.n:
                e = self.s[self.i + 1]
                text.append(_ESCAPES.get(e, e))
                self.i += 2
                continue
            if c == "$":
                d = self.peek(1)
                if d == "(" or d == "{" or d in _IDENT_CHARS or d in "?^":
                    if text:
                        parts.append("".join(text))
                        text = []
                    if d == "(":
                        sub_start = self.i
                        self.i += 2
                        parts.append(ast.SubExpression(self.extent(sub_start), tuple(self.nested_statements(")"))))
                    else:
                        parts.append(self.variable())
                    continue
            text.append(c)
            self.i += 1
        if text:
            parts.append("".join(text))
        return parts

    def here_string(self) -> Expr:
        start = self.i
        q = self.peek(1)
        self.i += 2
        self.skip()
        if self.peek() == "\r":
            self.i += 1
        if self.peek() != "\n":
            raise self.error("No characters are allowed after a here-string header but before the end of the line.", "UnexpectedCharactersAfterHereStringHeader")
        self.i += 1
        closer = re.compile(r"\r?\n" + re.escape(q) + "@")
        if self.s.startswith(q + "@", self.i):  # empty here-string
            self.i += 2
            return ast.Constant(self.extent(start), "")
        if q == "'":
            m = closer.search(self.s, self.i)
            if not m:
                raise self.error("The string is missing the terminator: '@.", "TerminatorExpectedAtEndOfString", start)
            value = self.s[self.i : m.start()]
            self.i = m.end()
            return ast.Constant(self.extent(start), value)

        def at_end() -> bool:
            m = closer.match(self.s, self.i)
            return m is not None

        parts = self.expandable_body(at_end, start, doubled_quote=False)
        m = closer.match(self.s, self.i)
        assert m is not None
        self.i = m.end()
        return self._string_node(start, parts)


def number_value(text: str) -> int | float:
    """The value of a PowerShell numeric literal (``143``, ``0x1F``, ``1.5``, ``10KB``, ``-3``).

    Args:
        text: The literal as written.

    Returns:
        An int (up to System.Decimal's 28 digits; longer integers become doubles, as in
        PowerShell) or a float; infinity for a literal beyond a double's range, which the
        parser reports as PowerShell's "Bad numeric constant".
    """
    t = text.strip()
    sign = -1 if t.startswith("-") else 1
    t = t.lstrip("+-")
    mult = 1
    low = t.lower()
    for suffix, factor in (("kb", 1 << 10), ("mb", 1 << 20), ("gb", 1 << 30), ("tb", 1 << 40), ("pb", 1 << 50)):
        if low.endswith(suffix):
            mult = factor
            t = t[:-2]
            low = low[:-2]
            break
    is_decimal = False
    if low.endswith(("l", "d")) and not low.startswith("0x"):
        is_decimal = low.endswith("d")
        t = t[:-1]
        low = low[:-1]
    value: int | float
    if low.startswith("0x"):
        value = int(low, 16) if len(low) - 2 <= _MAX_HEX_DIGITS else math.inf
    elif any(ch in low for ch in ".e") or len(low) > _MAX_EXACT_DIGITS:
        value = float(low)
        if is_decimal and value.is_integer() and mult == 1:
            return sign * value
    else:
        value = int(low)
    value = value * mult
    if isinstance(value, float) and value.is_integer() and mult > 1:
        value = int(value)
    return sign * value
