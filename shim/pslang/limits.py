"""What one script may cost the service: nesting depth, call depth, work, CPU time, value sizes.

A script reaches the interpreter from the network (WinRS), so every way of making it run,
recurse or allocate without end is bounded here. Each bound is answered with a PowerShell-style
error record, never with a Python exception: PowerShell's own message where PowerShell has the
same limit (call depth, ranges, numeric constants), a message of ours in the same shape where
it has none.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from shim.pslang.records import RuntimeFailure

__all__ = [
    "MAX_CALL_DEPTH",
    "MAX_COLLECTION_LENGTH",
    "MAX_NESTING_DEPTH",
    "MAX_OUTPUT_LENGTH",
    "MAX_SCRIPT_CPU_SECONDS",
    "MAX_SCRIPT_STEPS",
    "MAX_STRING_LENGTH",
    "CHARACTERS_PER_STEP",
    "ELEMENTS_PER_STEP",
    "Budget",
    "BudgetExceeded",
    "LimitExceeded",
    "ScriptLimits",
    "collection_too_large",
    "range_too_large",
    "string_too_long",
]

#: Levels of nesting the parser reads (parentheses, ``$()``, ``@()``, ``@{}``, script and
#: statement blocks, unary operators and casts); deeper text is a parse error. Each level costs
#: the recursive-descent parser about twenty Python frames, so this keeps well under Python's
#: recursion limit even on a service thread.
MAX_NESTING_DEPTH = 32

#: Function and script-block calls active at once (PowerShell: "call depth overflow").
MAX_CALL_DEPTH = 50

#: Interpreter steps one run may take: statements, expression evaluations and loop iterations.
#: ``while ($true) {}`` uses it up in about half a second; a report that builds 10,000 rows with
#: ``$rows += [pscustomobject]@{...}`` uses about a quarter of it.
MAX_SCRIPT_STEPS = 1_000_000

#: Thread CPU seconds one run may use (checked every :data:`CPU_CHECK_INTERVAL` steps). Time
#: spent waiting (on IMAP servers, the database lock) is not counted, so a script that waits
#: for a batch to sync is not cut short; a loop whose every step is expensive is.
MAX_SCRIPT_CPU_SECONDS = 20.0

#: Steps between two readings of the thread's CPU clock.
CPU_CHECK_INTERVAL = 1024

#: Characters copied into a new string that count as one step (``$s += ...`` copies the whole string).
CHARACTERS_PER_STEP = 4096

#: Elements copied into a new array that count as one step (``$a += ...`` copies the whole array, so
#: building a report of 10,000 rows that way costs about 200,000 steps on top of its statements).
ELEMENTS_PER_STEP = 256

#: Characters in one string the interpreter builds (``+``, ``*``, ``-join``, ``-f``, PadLeft...).
MAX_STRING_LENGTH = 16 * 1024 * 1024

#: Elements in one array or range the interpreter builds.
MAX_COLLECTION_LENGTH = 1_000_000

#: Characters one run may print (output, Write-Host, warnings and error text together).
MAX_OUTPUT_LENGTH = 64 * 1024 * 1024


@dataclass(frozen=True)
class ScriptLimits:
    """The bounds one interpreter applies to each run (defaults: the module's constants)."""

    max_steps: int = MAX_SCRIPT_STEPS
    max_cpu_seconds: float = MAX_SCRIPT_CPU_SECONDS
    max_call_depth: int = MAX_CALL_DEPTH
    max_string_length: int = MAX_STRING_LENGTH
    max_collection_length: int = MAX_COLLECTION_LENGTH
    max_output_length: int = MAX_OUTPUT_LENGTH


class LimitExceeded(RuntimeFailure):
    """Raised for a value too large to build; it ends the script (a try/catch can still take it)."""

    category = "LimitsExceeded"


class BudgetExceeded(Exception):
    """Raised when a run has used up its steps, CPU time or output; no try/catch in the script stops it.

    Control flow inside the interpreter, like break and return, hence not a ShimError: the
    interpreter's ``except ShimError`` handlers must let it through to the top of the run, which
    reports ``failure``.
    """

    def __init__(self, failure: RuntimeFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class Budget:
    """Counts the steps, the thread's CPU time and the output of one run.

    Args:
        limits: The bounds to apply.
    """

    def __init__(self, limits: ScriptLimits) -> None:
        self.limits = limits
        self._started = time.thread_time()
        self._steps = 0
        self._next_cpu_check = CPU_CHECK_INTERVAL
        self._printed = 0
        self._exhausted: RuntimeFailure | None = None

    def printed(self, length: int) -> bool:
        """Count ``length`` characters of output.

        Returns:
            False when they go past the run's output limit: the caller drops them, and the
            next :meth:`step` stops the run.
        """
        self._printed += length
        if self._printed <= self.limits.max_output_length:
            return True
        if self._exhausted is None:
            self._exhausted = RuntimeFailure(
                f"The script was stopped because it printed more than {self.limits.max_output_length:,} characters "
                "in one run.",
                error_id="ScriptOutputLimitExceeded",
                category="OperationStopped",
            )
        return False

    def step(self, count: int = 1) -> None:
        """Count ``count`` steps (one statement, expression or loop turn; or a large copy).

        Raises:
            BudgetExceeded: once the run has taken too many steps or too much CPU time, and on
                every step after that (so a ``catch`` or ``finally`` block cannot go on running).
        """
        self._steps += count
        if self._exhausted is not None:
            raise BudgetExceeded(self._exhausted)
        if self._steps > self.limits.max_steps:
            self._exhausted = RuntimeFailure(
                f"The script was stopped because it ran more than {self.limits.max_steps:,} steps "
                "(statements and expressions) in one run; a script that runs without end is not allowed "
                "in a Mailshift session.",
                error_id="ScriptStepLimitExceeded",
                category="OperationStopped",
            )
            raise BudgetExceeded(self._exhausted)
        if self._steps < self._next_cpu_check:
            return
        self._next_cpu_check = self._steps + CPU_CHECK_INTERVAL
        if time.thread_time() - self._started > self.limits.max_cpu_seconds:
            self._exhausted = RuntimeFailure(
                f"The script was stopped because it used more than {self.limits.max_cpu_seconds:g} seconds "
                "of processor time in one run.",
                error_id="ScriptTimeLimitExceeded",
                category="OperationStopped",
            )
            raise BudgetExceeded(self._exhausted)


def string_too_long(length: int, limit: int) -> LimitExceeded:
    """The error for a string the interpreter refuses to build."""
    return LimitExceeded(
        f"The string would be {length:,} characters long; a Mailshift session builds strings of at most "
        f"{limit:,} characters.",
        error_id="StringTooLong",
    )


def collection_too_large(length: int, limit: int) -> LimitExceeded:
    """The error for an array the interpreter refuses to build."""
    return LimitExceeded(
        f"The array would have {length:,} elements; a Mailshift session builds arrays of at most {limit:,} elements.",
        error_id="ArrayTooLarge",
    )


def range_too_large() -> LimitExceeded:
    """PowerShell's error for a range operator (``..``) with too many elements."""
    return LimitExceeded("The range is too large.", error_id="RangeTooLarge", category="InvalidOperation")
