"""Open shells as seen from outside the service: a listing file and close requests in the instance folder.

``mailshift admin shells`` and ``mailshift admin close-shells`` run in another process than
``mailshift serve``, on the same instance folder, so the two talk through files there (mode 0600):

- ``<instance>/shells.json``: written by the service every :data:`SHELL_CONTROL_POLL_SECONDS`
  when it changed: the service's process id and every open WinRS shell and PSRP runspace pool
  (id, kind, owner, seconds idle). Removed when the service stops.
- ``<instance>/shell-requests/<token>.request.json``: a request, to list the shells as they are
  now or to close an owner's shells (all, or one by id). The service carries it out on its next
  poll, deletes it and writes ``<token>.done.json`` with the listing or the ids it closed, which
  the CLI reads and deletes.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from engine.errors import ConfigurationError
from shim.shelltable import ShellTable

__all__ = ["SHELL_CONTROL_POLL_SECONDS", "SHELL_CONTROL_WAIT_SECONDS", "ShellControl", "close_shells", "list_shells"]

_log = logging.getLogger(__name__)

#: How often the service reaps idle shells, takes close requests and rewrites the listing (seconds).
SHELL_CONTROL_POLL_SECONDS = 1.0
#: How long the CLI waits for the service to take a close request (seconds).
SHELL_CONTROL_WAIT_SECONDS = 15.0
_LISTING = "shells.json"
_REQUESTS = "shell-requests"


def _write(path: Path, data: Any) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1)
    os.replace(temporary, path)


class ShellControl:
    """The service side: publishes the open shells and carries out close requests.

    Args:
        instance: The instance folder.
        tables: The doors' shell tables (WinRS shells, PSRP runspace pools).
    """

    def __init__(self, instance: str | Path, tables: list[ShellTable[Any]]) -> None:
        self.instance = Path(instance)
        self.tables = tables
        self._requests = self.instance / _REQUESTS
        self._published: Any = None
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> None:
        """Reap idle shells, carry out pending close requests, and rewrite the listing when it changed."""
        for table in self.tables:
            table.reap()
        for request in sorted(self._requests.glob("*.request.json")) if self._requests.is_dir() else []:
            self._carry_out(request)
        listing = {"pid": os.getpid(), "shells": self._shells()}
        if listing != self._published:
            _write(self.instance / _LISTING, listing)
            self._published = listing

    def _carry_out(self, request: Path) -> None:
        token = request.name.removesuffix(".request.json")
        try:
            wanted = json.loads(request.read_text("utf-8"))
            owner, shell_id = wanted.get("owner"), wanted.get("id")
        except (OSError, ValueError, AttributeError) as exc:
            _log.warning("shell request %s ignored: %s", request.name, exc)
            request.unlink(missing_ok=True)
            return
        if owner is None:
            answer: dict[str, Any] = {"shells": self._shells()}
        else:
            answer = {"closed": [i for t in self.tables for i in t.close(str(owner), str(shell_id) if shell_id else None)]}
        _write(self._requests / f"{token}.done.json", answer)
        request.unlink(missing_ok=True)

    def _shells(self) -> list[dict[str, Any]]:
        shells = [{"id": shell_id, "kind": table.kind, "owner": owner, "idle_seconds": round(idle)}
                  for table in self.tables for shell_id, owner, idle in table.listing()]
        return sorted(shells, key=lambda s: (s["owner"], s["kind"], s["id"]))

    def start(self) -> None:
        """Poll in a daemon thread until :meth:`stop`; stale requests of an earlier run are dropped first."""
        self._requests.mkdir(mode=0o700, exist_ok=True)
        for stale in self._requests.iterdir():
            stale.unlink(missing_ok=True)
        self.poll()
        self._thread = threading.Thread(target=self._run, name="shell-control", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._halt.wait(SHELL_CONTROL_POLL_SECONDS):
            try:
                self.poll()
            except OSError as exc:  # a full disk or a removed folder must not stop the reaping
                _log.warning("the shell listing could not be written: %s", exc)

    def stop(self) -> None:
        """Stop polling and remove the listing (the shells end with the service)."""
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        (self.instance / _LISTING).unlink(missing_ok=True)


def _running_listing(instance: Path) -> dict[str, Any]:
    try:
        listing: dict[str, Any] = json.loads((instance / _LISTING).read_text("utf-8"))
        os.kill(int(listing["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigurationError(f"mailshift serve is not running on {instance} (no shells are open)") from None
    return listing


def list_shells(instance: str | Path, owner: str | None = None) -> list[dict[str, Any]]:
    """The open shells of the service running on ``instance`` (of one owner, in any case, or all).

    Raises:
        ConfigurationError: when no service runs on the instance.
    """
    shells: list[dict[str, Any]] = _ask(Path(instance), {"owner": None})["shells"]
    return [s for s in shells if owner is None or str(s["owner"]).lower() == owner.lower()]


def close_shells(instance: str | Path, owner: str, shell_id: str | None = None) -> list[str]:
    """Have the running service close ``owner``'s shells (all, or one); returns the ids it closed.

    Raises:
        ConfigurationError: when no service runs on the instance or it did not take the request in time.
    """
    closed: list[str] = _ask(Path(instance), {"owner": owner, "id": shell_id})["closed"]
    return closed


def _ask(folder: Path, question: dict[str, Any], wait_seconds: float = SHELL_CONTROL_WAIT_SECONDS) -> dict[str, Any]:
    """Put a request to the running service and wait for its answer."""
    _running_listing(folder)
    requests = folder / _REQUESTS
    token = secrets.token_hex(8)
    request, done = requests / f"{token}.request.json", requests / f"{token}.done.json"
    _write(request, question)
    deadline = time.monotonic() + wait_seconds
    while not done.exists():
        if time.monotonic() > deadline:
            request.unlink(missing_ok=True)
            raise ConfigurationError(f"mailshift serve on {folder} did not take the request within {wait_seconds:.0f} s")
        time.sleep(0.1)
    answer: dict[str, Any] = json.loads(done.read_text("utf-8"))
    done.unlink(missing_ok=True)
    return answer
