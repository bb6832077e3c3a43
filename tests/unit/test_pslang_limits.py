"""A script can never hang or exhaust the interpreter: each bound ends it promptly with a PowerShell-style error.

Where PowerShell 7 has the same limit, the test says which of its behaviours we match:

* a backtick at the very end of the text: the tokenizer's ``IncompleteString`` parse error,
  "Incomplete string token.";
* a numeric literal beyond a double's range: the parser's ``BadNumericConstant``,
  "Bad numeric constant: ...";
* an integer literal too long for Decimal, an integer result past Int64: widened to a double;
* a range with too many elements: "The range is too large.";
* recursion too deep: ``CallDepthOverflow``, "The script failed due to call depth overflow.".

PowerShell has no nesting, step, CPU-time, output or string/array-size limit of its own (it
fails with an out-of-memory or stack-overflow crash); those errors are ours, in the same record
shape (message, position, CategoryInfo, FullyQualifiedErrorId).
"""

from __future__ import annotations

import re
import time

import pytest

from shim.host import ScriptOutcome
from shim.pslang import Interpreter
from shim.pslang.limits import (
    MAX_CALL_DEPTH,
    MAX_COLLECTION_LENGTH,
    MAX_NESTING_DEPTH,
    MAX_SCRIPT_STEPS,
    MAX_STRING_LENGTH,
    ScriptLimits,
)
from tests.unit.test_pslang import FakeHost

#: Limits small enough that the loops whose every step writes an error record end in a blink.
SMALL = ScriptLimits(max_steps=20_000)

#: Python's own words, which must never reach a script's errors.
_PYTHON_TEXT = re.compile(r"Traceback|RecursionError|MemoryError|OverflowError|ValueError|maximum recursion|int_max_str_digits")


def _run(script: str, limits: ScriptLimits | None = None) -> tuple[ScriptOutcome, float]:
    started = time.monotonic()
    outcome = Interpreter(FakeHost(), limits=limits).run(script)
    return outcome, time.monotonic() - started


def _error_id(outcome: ScriptOutcome) -> str:
    """The FullyQualifiedErrorId of the script's last error (the one that ended it)."""
    assert outcome.errors, outcome.stdout[:200]
    m = re.search(r"FullyQualifiedErrorId : (\S+)", outcome.errors[-1])
    assert m, outcome.errors[-1][:300]
    return m.group(1)


def _assert_ended_by(outcome: ScriptOutcome, error_id: str, message: str) -> None:
    assert _error_id(outcome) == error_id
    assert message in outcome.errors[-1]
    assert outcome.exit_code == 1
    assert not any(_PYTHON_TEXT.search(e) for e in outcome.errors)


# -- trailing backtick ----------------------------------------------------------------------------------------------


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "script",
    [
        'Write-Host "a" `',  # the service used to loop here forever, growing by gigabytes
        "Write-Host a `",
        "Write-Host -Object `",
        'Write-Host "a" `\nWrite-Host "b" `',  # continued once, then at the end
        "Get-MigrationBatch |`",  # after a pipe
        "Get-MigrationBatch | `",
        "$x = 1 + `",  # in an expression
        "$x = @(1, `",
        "Write-Host one; Write-Host two `",
    ],
)
def test_trailing_backtick_is_powershells_incomplete_string_error(script: str) -> None:
    # PowerShell's tokenizer: a backtick followed by the end of input is IncompleteString.
    outcome, _ = _run(script)
    _assert_ended_by(outcome, "IncompleteString", "Incomplete string token.")
    assert outcome.stdout == ""  # a parse error runs nothing


@pytest.mark.timeout(10)
def test_backtick_inside_a_string_at_the_end_is_a_missing_terminator() -> None:
    outcome, _ = _run('Write-Host "a`')
    _assert_ended_by(outcome, "TerminatorExpectedAtEndOfString", "The string is missing the terminator")


@pytest.mark.timeout(10)
def test_backtick_continuing_a_command_in_the_middle_still_works() -> None:
    outcome, _ = _run('Write-Host "a" `\n  "b"\nWrite-Host c')
    assert (outcome.stdout, outcome.errors) == ("a b\nc\n", [])


# -- deep nesting -----------------------------------------------------------------------------------------------------

#: (opening, middle, closing) of one nesting level, by kind.
NESTINGS = {
    "braces": ("& {", "1", "}"),
    "statement blocks": ("if ($true) {", "1", "}"),
    "parentheses": ("(", "1", ")"),
    "subexpressions": ("$(", "1", ")"),
    "array subexpressions": ("@(", "1", ")"),
    "hash literals": ("@{a=", "1", "}"),
    "unary commas": (",", "1", ""),
    "-not": ("-not ", "$true", ""),
    "!": ("!", "$true", ""),
    "casts": ("[int]", "1", ""),
    "pipelines in script blocks": ("1 | ForEach-Object { ", "$_", " }"),
    "nested function calls": ("Write-Output (", "1", ")"),
    "strings": ('"$(', "1", ')"'),
}


@pytest.mark.timeout(10)
@pytest.mark.parametrize("kind", NESTINGS)
@pytest.mark.parametrize("levels", [MAX_NESTING_DEPTH + 1, 3000])
def test_deep_nesting_is_a_parse_error(kind: str, levels: int) -> None:
    opening, middle, closing = NESTINGS[kind]
    outcome, _ = _run(opening * levels + middle + closing * levels)
    _assert_ended_by(outcome, "ScriptNestedTooDeeply", f"more than {MAX_NESTING_DEPTH} levels deep")
    assert "At line:1 char:" in outcome.errors[-1]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("kind", NESTINGS)
def test_nesting_up_to_the_limit_runs(kind: str) -> None:
    opening, middle, closing = NESTINGS[kind]
    outcome, _ = _run(opening * MAX_NESTING_DEPTH + middle + closing * MAX_NESTING_DEPTH)
    assert outcome.errors == [] and outcome.exit_code == 0


@pytest.mark.timeout(10)
def test_long_flat_lists_are_not_nesting() -> None:
    commas, _ = _run("(" + ",".join(["1"] * 3000) + ").Count")
    assert (commas.stdout, commas.errors) == ("3000\n", [])
    pipeline, _ = _run("1" + " | ForEach-Object { $_ + 1 }" * 300)
    assert (pipeline.stdout, pipeline.errors) == ("301\n", [])


@pytest.mark.timeout(10)
def test_a_very_long_operator_chain_ends_with_an_error() -> None:
    # Evaluated left-deep: 5,000 operands exhaust the evaluator's stack, reported as PowerShell's overflow.
    outcome, seconds = _run("1" + "+1" * 5000)
    _assert_ended_by(outcome, "CallDepthOverflow", "The script failed due to call depth overflow.")
    assert seconds < 5


# -- huge numbers and ranges -------------------------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_a_literal_past_a_doubles_range_is_a_bad_numeric_constant() -> None:
    # PowerShell's parser: BadNumericConstant (5,000 digits used to hit Python's int-string limit).
    outcome, _ = _run("1.." + "9" * 5000)
    _assert_ended_by(outcome, "BadNumericConstant", "Bad numeric constant: 9999")
    hexadecimal, _ = _run("0x" + "F" * 100)
    _assert_ended_by(hexadecimal, "BadNumericConstant", "Bad numeric constant: 0xFFFF")


@pytest.mark.timeout(10)
def test_long_integer_literals_are_doubles() -> None:
    # PowerShell: an integer literal too long for Decimal is a Double.
    outcome, _ = _run(("9" * 300) + " -is [double]; " + ("1" + "0" * 40) + " / 1e40")
    assert (outcome.stdout, outcome.errors) == ("True\n1\n", [])


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "script",
    ["1..1e9", "1..(10*1000*1000*1000)", "1.." + "9" * 300, "$n = 1e308 * 10; 1..$n", "-5..[long]4e18", "1..1e8 | ForEach-Object { $_ }"],
)
def test_a_range_too_large_is_powershells_error(script: str) -> None:
    # PowerShell: "The range is too large." (we build ranges as arrays, so the bound is the array bound).
    outcome, seconds = _run(script)
    _assert_ended_by(outcome, "RangeTooLarge", "The range is too large.")
    assert seconds < 2


@pytest.mark.timeout(10)
def test_a_range_up_to_the_array_bound_is_built() -> None:
    outcome, _ = _run(f"(1..{MAX_COLLECTION_LENGTH - 1}).Count")
    assert (outcome.stdout, outcome.errors) == (f"{MAX_COLLECTION_LENGTH - 1}\n", [])


@pytest.mark.timeout(10)
def test_int_max_value_ends_promptly_with_the_static_member_refusal() -> None:
    outcome, _ = _run("1..[int]::MaxValue")
    assert "[int]::MaxValue is not allowed in a Mailshift session" in outcome.errors[-1]
    assert outcome.exit_code == 1


@pytest.mark.timeout(10)
def test_integer_results_past_int64_widen_to_double() -> None:
    # PowerShell widens an overflowing integer operation to Double; squaring forever reaches Infinity.
    outcome, _ = _run("$i = 2; for ($k = 0; $k -lt 20; $k++) { $i *= $i }; $i -is [double]; $i")
    assert (outcome.stdout, outcome.errors) == ("True\nInfinity\n", [])
    forever, seconds = _run("$i = 2; while ($true) { $i *= $i }")
    _assert_ended_by(forever, "ScriptStepLimitExceeded", "ran more than")
    assert seconds < 8


@pytest.mark.timeout(10)
def test_a_huge_number_in_a_string_is_a_conversion_error() -> None:
    outcome, _ = _run('[int]("9" * 5000)')
    assert 'Cannot convert value "9999' in outcome.errors[-1]
    assert not any(_PYTHON_TEXT.search(e) for e in outcome.errors)


# -- runaway loops and recursion ------------------------------------------------------------------------------------------


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "script",
    [
        "while ($true) {}",
        "for (;;) {}",
        "do {} while ($true)",
        "do {} until ($false)",
        "while ($true) { $x = 1 }",
        "foreach ($i in 1..10) { while (1) { } }",
    ],
)
def test_runaway_loops_use_up_the_step_budget(script: str) -> None:
    outcome, seconds = _run(script)
    _assert_ended_by(outcome, "ScriptStepLimitExceeded", f"ran more than {MAX_SCRIPT_STEPS:,} steps")
    assert "CategoryInfo          : OperationStopped" in outcome.errors[-1]
    assert seconds < 8


@pytest.mark.timeout(10)
def test_the_step_budget_cannot_be_caught() -> None:
    outcome, _ = _run('try { while ($true) {} } catch { Write-Host "caught" } finally { Write-Host "finally" }\nWrite-Host after')
    _assert_ended_by(outcome, "ScriptStepLimitExceeded", "ran more than")
    assert "caught" not in outcome.stdout and "after" not in outcome.stdout


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "script",
    [
        "while ($true) { Get-MigrationStatus }",  # a terminating host error every turn
        "while ($true) { try { throw 'x' } catch { } }",
        "while ($true) { try { while ($true) {} } catch {} finally { while ($true) {} } }",
        'while ($true) { try { "x" * 1e10 } catch {} }',
    ],
)
def test_loops_that_fail_every_turn_end_on_the_budget(script: str) -> None:
    outcome, seconds = _run(script, SMALL)
    _assert_ended_by(outcome, "ScriptStepLimitExceeded", "ran more than 20,000 steps")
    assert seconds < 5


@pytest.mark.timeout(10)
def test_the_cpu_budget_ends_a_run() -> None:
    outcome, _ = _run("while ($true) {}", ScriptLimits(max_cpu_seconds=0.0))
    _assert_ended_by(outcome, "ScriptTimeLimitExceeded", "seconds of processor time")


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "script",
    [
        "function f { f }; f",
        "function Get-Depth($n) { Get-Depth ($n + 1) }; Get-Depth 0",
        "$b = { & $b }; & $b",
        "function f { 1 | ForEach-Object { f } }; f",
    ],
)
def test_recursion_is_powershells_call_depth_overflow(script: str) -> None:
    # PowerShell: ScriptCallDepthException, "The script failed due to call depth overflow."
    outcome, seconds = _run(script)
    _assert_ended_by(outcome, "CallDepthOverflow", "The script failed due to call depth overflow.")
    assert seconds < 2


@pytest.mark.timeout(10)
def test_recursion_up_to_the_call_depth_runs() -> None:
    outcome, _ = _run(f"function f($n) {{ if ($n -gt 1) {{ f ($n - 1) }} else {{ 'bottom' }} }}; f {MAX_CALL_DEPTH}")
    assert (outcome.stdout, outcome.errors) == ("bottom\n", [])


@pytest.mark.timeout(10)
@pytest.mark.parametrize("script", ["function f { try { f } catch { f } }; f", "function f { try { f } finally { f } }; f"])
def test_recursion_that_catches_its_own_overflow_ends_on_the_budget(script: str) -> None:
    # Each catch or finally calls again: exponentially many calls, cut by the step budget in linear time
    # (an error raised in a catch or finally block no longer chains every error handled before it).
    outcome, seconds = _run(script, ScriptLimits(max_steps=200_000))
    _assert_ended_by(outcome, "ScriptStepLimitExceeded", "ran more than 200,000 steps")
    assert seconds < 5


# -- value growth --------------------------------------------------------------------------------------------------------


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("script", "error_id", "message"),
    [
        ('$s = "x"; while ($true) { $s += $s }', "StringTooLong", f"at most {MAX_STRING_LENGTH:,} characters"),
        ('"x" * 1e10', "StringTooLong", "would be 10,000,000,000 characters long"),
        ('$s = "x" * 1000; $s *= 1e9', "StringTooLong", "would be 1,000,000,000,000 characters long"),
        ("@(1) * 1e9", "ArrayTooLarge", "would have 1,000,000,000 elements"),
        ("$a = @(1); while ($true) { $a += $a }", "ArrayTooLarge", f"at most {MAX_COLLECTION_LENGTH:,} elements"),
        ('"{0,2000000000}" -f 1', "StringTooLong", "would be 2,000,000,000 characters long"),
        ('"x".PadLeft(2000000000)', "StringTooLong", "would be 2,000,000,000 characters long"),
        ('$a = @("x" * 1000) * 100000; $a -join ","', "StringTooLong", "characters long"),
        ('$a = @("x" * 1000) * 100000; -join $a', "StringTooLong", "characters long"),
        ('$s = "x" * 16000000; $s -split ""', "ArrayTooLarge", f"at most {MAX_COLLECTION_LENGTH:,} elements"),
        ('$s = "x y " * 1000000; -split $s', "ArrayTooLarge", f"at most {MAX_COLLECTION_LENGTH:,} elements"),
        ('$s = "x," * 2000000; $s.Split(",")', "ArrayTooLarge", "would have 2,000,001 elements"),
        ('$s = "x" * 2000000; $s.ToCharArray()', "ArrayTooLarge", "would have 2,000,000 elements"),
        ('$s = "x" * 1000000; $s.Replace("x", "y" * 100)', "StringTooLong", "would be 100,000,000 characters long"),
        ('$s = "x" * 1000000; $s -replace "x", ("y" * 100)', "StringTooLong", "characters long"),
        ('$s = "x" * 1000000; $s -replace "(x)", ("`$1" * 100)', "StringTooLong", "characters long"),
    ],
)
def test_values_past_their_bound_end_the_script(script: str, error_id: str, message: str) -> None:
    outcome, seconds = _run(script + "\nWrite-Host after")
    _assert_ended_by(outcome, error_id, message)
    assert "CategoryInfo          : LimitsExceeded" in outcome.errors[-1]
    assert "after" not in outcome.stdout
    assert seconds < 5


@pytest.mark.timeout(10)
@pytest.mark.parametrize("script", ["$a = @(); while ($true) { $a += 1 }", '$s = ""; while ($true) { $s += "x" * 80 }'])
def test_appending_without_end_is_charged_for_what_each_append_copies(script: str) -> None:
    # Each += copies the whole value: without charging the copy, these ran for the whole CPU budget.
    outcome, seconds = _run(script)
    _assert_ended_by(outcome, "ScriptStepLimitExceeded", "ran more than")
    assert seconds < 5


@pytest.mark.timeout(10)
def test_a_ten_thousand_row_report_built_with_plus_equals_runs() -> None:
    outcome, _ = _run("$r = @(); foreach ($i in 1..10000) { $r += [pscustomobject]@{ N = $i; Name = \"user$i\" } }; "
                      "$r.Count; ($r | Measure-Object -Property N -Sum).Sum")
    assert (outcome.stdout, outcome.errors) == ("10000\n50005000\n", [])


@pytest.mark.timeout(10)
def test_splitting_and_replacing_within_the_bounds_work() -> None:
    outcome, _ = _run('$s = "x" * 1000000; ($s -replace "(x)", "<`$1>").Length; ("x" * 999000 -split "").Count; '
                      '"a1b2" -replace "(\\d)", "<`$1>"; ("a,b,,c" -split ",").Count; "a b  c" -split " ", 2')
    assert (outcome.stdout, outcome.errors) == ("3000000\n999002\na<1>b<2>\n4\na\nb  c\n", [])


@pytest.mark.timeout(10)
def test_a_size_error_can_be_caught_like_any_terminating_error() -> None:
    outcome, _ = _run('try { "x" * 1e10 } catch { $_.FullyQualifiedErrorId; $_.CategoryInfo.Category }; "after"')
    assert (outcome.stdout, outcome.errors) == ("StringTooLong\nLimitsExceeded\nafter\n", [])


@pytest.mark.timeout(10)
def test_printing_without_end_stops_at_the_output_bound() -> None:
    outcome, seconds = _run('while ($true) { Write-Host ("x" * 1000000) }')
    _assert_ended_by(outcome, "ScriptOutputLimitExceeded", "printed more than")
    assert len(outcome.stdout) <= ScriptLimits().max_output_length
    assert seconds < 5


# -- after a limit -----------------------------------------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_the_next_run_of_the_same_session_has_a_fresh_budget() -> None:
    shell = Interpreter(FakeHost())
    assert _error_id(shell.run("while ($true) {}")) == "ScriptStepLimitExceeded"
    assert _error_id(shell.run("function f { f }; f")) == "CallDepthOverflow"
    after = shell.run("$total = 0; foreach ($i in 1..1000) { $total += $i }; $total")
    assert (after.stdout, after.errors, after.exit_code) == ("500500\n", [], 0)
    assert shell.evaluate("$Error[0].FullyQualifiedErrorId; $Error[1].FullyQualifiedErrorId") == [
        "CallDepthOverflow",
        "ScriptStepLimitExceeded",
    ]
