"""pywinrm against a live ``mailshift serve``: scripts that would hang or exhaust the service end with an error.

The trailing backtick once spun a service thread forever and grew it to gigabytes; a runaway
loop had no end at all. Each now comes back promptly as stderr (CLIXML turned back into text
by pywinrm) with exit code 1, and the service answers the next request as usual.
"""

from __future__ import annotations

import time

import pytest
import winrm

from shim.pslang.limits import MAX_CALL_DEPTH, MAX_SCRIPT_STEPS
from tests.servers.service import MailshiftService


def _run_ps(service: MailshiftService, script: str) -> tuple[str, str, int, float]:
    session = winrm.Session(service.wsman, auth=(service.user, service.password), transport="plaintext", proxy=None,
                            ca_trust_path=None)
    started = time.monotonic()
    result = session.run_ps(script)
    out = result.std_out.decode("utf-8", "replace").replace("\r\n", "\n")
    return out, result.std_err.decode("utf-8", "replace"), result.status_code, time.monotonic() - started


def _answers_normally(service: MailshiftService) -> None:
    out, err, code, _ = _run_ps(service, '$n = 0; foreach ($i in 1..10) { $n += $i }; Write-Host "sum $n"; Get-MigrationBatch')
    assert (out, err, code) == ("sum 55\n", "", 0)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("script", "message"),
    [
        ('Write-Host "a" `', "Incomplete string token."),  # PowerShell's IncompleteString parse error
        ("Get-MigrationBatch |`", "Incomplete string token."),
        ("while ($true) {}", f"ran more than {MAX_SCRIPT_STEPS:,} steps"),
        ("for (;;) {}", f"ran more than {MAX_SCRIPT_STEPS:,} steps"),
        ("function f { f }; f", "The script failed due to call depth overflow."),  # PowerShell's message
        ('$s = "x"; while ($true) { $s += $s }', "a Mailshift session builds strings of at most"),
        ("(" * 3000 + "1" + ")" * 3000, "levels deep"),
        ("1.." + "9" * 5000, "Bad numeric constant"),
    ],
)
def test_runaway_script_ends_with_an_error_and_the_service_goes_on(service: MailshiftService, script: str,
                                                                  message: str) -> None:
    out, err, code, seconds = _run_ps(service, script)
    assert code == 1
    assert message in err
    assert "Traceback" not in err and "RecursionError" not in err and "500" not in out
    assert seconds < 15, f"the script took {seconds:.1f} s to be refused"
    _answers_normally(service)


@pytest.mark.timeout(60)
def test_recursion_below_the_call_depth_still_runs(service: MailshiftService) -> None:
    # Through the service's own (deeper) Python stack, the full call depth is still available.
    out, err, code, _ = _run_ps(service, f"function f($n) {{ if ($n -gt 1) {{ f ($n - 1) }} else {{ Write-Host bottom }} }}; "
                                         f"f {MAX_CALL_DEPTH}")
    assert (out, err, code) == ("bottom\n", "", 0)
