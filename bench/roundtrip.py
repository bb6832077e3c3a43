"""Cmdlet round trips through the service's doors: median latency over REST and over pywinrm.

Starts a throwaway ``mailshift serve`` (its own instance folder, loopback, plain HTTP), then
times ``Get-MigrationBatch`` (with a few batches in the catalog) as the PowerShell module sends
it (one REST POST on a kept-alive connection) and as pywinrm's ``run_ps`` sends it (a WinRS
shell: Create, Command, Receive, Signal, Delete). Goals: REST median <= 10 ms, pywinrm median
<= 50 ms. Prints the figures; exits 0 whenever it could measure.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests
import winrm

from tests.servers.service import MailshiftService

GOAL_REST_MS = 10.0
GOAL_WINRM_MS = 50.0


def _times(action: Callable[[], None], count: int) -> list[float]:
    action()  # warm up: imports, caches, the first connection
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def _summary(name: str, samples: list[float], goal: float) -> dict[str, float | str]:
    ordered = sorted(samples)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    median = statistics.median(samples)
    verdict = "meets" if median <= goal else "misses"
    print(f"{name:8} median {median:6.2f} ms  p95 {p95:6.2f} ms  ({len(samples)} calls; goal {goal:.0f} ms: {verdict})")
    return {"door": name, "median_ms": round(median, 2), "p95_ms": round(p95, 2), "calls": len(samples),
            "goal_ms": goal, "verdict": verdict}


def main(argv: list[str] | None = None) -> int:
    """Run the round-trip benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rest-calls", type=int, default=300)
    parser.add_argument("--winrm-calls", type=int, default=60)
    parser.add_argument("--output", type=Path, default=Path("bench/results/roundtrip.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ms-roundtrip-") as folder, \
            MailshiftService(Path(folder) / "instance", {"RUN_SCHEDULER": "false"}) as service:
        auth = (service.user, service.password)
        http = requests.Session()
        http.auth = auth
        for number in range(5):
            row = f"EmailAddress,UserName,Password\r\nuser{number}@contoso.edu,user{number},x\r\n"
            csv = base64.b64encode(row.encode()).decode()
            made = http.post(f"{service.url}/api/v1/cmdlets/New-MigrationBatch/invoke", timeout=30, json={
                "parameters": {"Imap": True, "Name": f"B{number}", "CSVData": csv, "RemoteServer": "imap.contoso.edu",
                               "Port": 143}})
            made.raise_for_status()
            assert made.json()["errors"] == [], made.json()["errors"]

        def rest() -> None:
            answer = http.post(f"{service.url}/api/v1/cmdlets/Get-MigrationBatch/invoke", json={"parameters": {}},
                               timeout=30)
            assert answer.status_code == 200 and len(answer.json()["output"]) == 5

        shell = winrm.Session(service.wsman, auth=auth, transport="plaintext", proxy=None, ca_trust_path=None)

        def run_ps() -> None:
            result = shell.run_ps("Get-MigrationBatch")
            assert result.status_code == 0 and b"B4" in result.std_out

        results = [_summary("REST", _times(rest, args.rest_calls), GOAL_REST_MS),
                   _summary("pywinrm", _times(run_ps, args.winrm_calls), GOAL_WINRM_MS)]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
