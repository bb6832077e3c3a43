"""``python -m bench.csv_bench``: parse and validate a 50,000-row IMAP CSV file, best of 5.

The file is what a large IMAP batch looks like: Excel's CRLF line endings, every user with an
admin-delegation login (seed 000's ``Admin*User`` form), one in ten with a UserRoot and one in
ten with a quoted password holding a comma. The goal is under a second on the 2-core build
machine; the exit status is 1 when the best run misses it.
"""

from __future__ import annotations

import sys
import time

from engine.csvfile import MAX_ROWS, MigrationType, parse_migration_csv

#: Runs timed; the best one counts (the others absorb warm-up and noise).
RUNS = 5

#: The best run must take less than this, in seconds.
GOAL_SECONDS = 1.0


def make_file(users: int = MAX_ROWS) -> bytes:
    """An IMAP CSV file of ``users`` distinct valid rows."""
    lines = ["EmailAddress,UserName,Password,UserRoot"]
    for n in range(users):
        password = f'"Pa$$,word{n}"' if n % 10 == 3 else f"Pa$$word{n}"
        root = f"/users/user{n}" if n % 10 == 7 else ""
        lines.append(f"user{n}@contoso.edu,administrator*user{n},{password},{root}")
    return ("\r\n".join(lines) + "\r\n").encode()


def main() -> int:
    """Time the runs, print the figure beside the goal; 0 when the goal is met."""
    data = make_file()
    timings = []
    for _ in range(RUNS):
        started = time.perf_counter()
        parsed = parse_migration_csv(data, MigrationType.IMAP)
        timings.append(time.perf_counter() - started)
        if len(parsed.rows) != MAX_ROWS:
            raise SystemExit(f"expected {MAX_ROWS} rows, got {len(parsed.rows)}")
    best = min(timings)
    verdict = "meets" if best < GOAL_SECONDS else "MISSES"
    print(
        f"parse_migration_csv: {MAX_ROWS:,} IMAP rows ({len(data) / 1e6:.1f} MB), best of {RUNS}: "
        f"{best:.3f} s ({verdict} the goal of < {GOAL_SECONDS:g} s)"
    )
    return 0 if best < GOAL_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
