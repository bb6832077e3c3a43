"""A live ``mailshift serve`` process on free loopback ports, for tests of the doors."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

__all__ = ["MailshiftService"]

_START_TIMEOUT_SECONDS = 30.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MailshiftService:
    """``mailshift serve`` on an instance folder, with one administrator account ``admin``.

    Args:
        instance: The instance folder (created).
        settings: ``MAILSHIFT_*`` settings without the prefix (e.g. ``{"TARGET_MAILDIR": ...}``).
        environ: More environment (passwords named by the settings).
        https: Also serve HTTPS (self-signed certificate made by the service).
    """

    def __init__(self, instance: Path, settings: Mapping[str, str] | None = None,
                 environ: Mapping[str, str] | None = None, *, https: bool = False) -> None:
        self.instance = instance
        self.user = "admin"
        self.password = secrets.token_urlsafe(16)
        self.port = _free_port()
        self.https_port = _free_port() if https else None
        self.import_folder = instance / "import"
        self._env = {**os.environ, **(environ or {}), "MAILSHIFT_INSTANCE": str(instance),
                     "MAILSHIFT_PORT": str(self.port), "MAILSHIFT_SCHEDULER_POLL_SECONDS": "0.2",
                     "MAILSHIFT_ADMIN_PASSWORD": self.password}
        if https:
            self._env.update({"MAILSHIFT_HTTPS": "true", "MAILSHIFT_HTTPS_PORT": str(self.https_port)})
        for key, value in (settings or {}).items():
            self._env[f"MAILSHIFT_{key}"] = value
        self._process: subprocess.Popen[bytes] | None = None
        self.log = instance / "service.log"

    @property
    def url(self) -> str:
        """The plain-HTTP base address."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The service process's id (for measuring it)."""
        assert self._process is not None, "the service is not running"
        return self._process.pid

    @property
    def wsman(self) -> str:
        """The WinRM endpoint."""
        return f"{self.url}/wsman"

    def mailshift(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a ``mailshift`` command with this service's environment."""
        return subprocess.run([sys.executable, "-m", "shim.cli", *args], env=self._env, capture_output=True,
                              text=True, timeout=60, check=False)

    def start(self) -> None:
        """Create the admin account (which makes the instance folder), start the service, and wait until it answers."""
        made = self.mailshift("admin", "add", self.user, "--email", "administrator@contoso.edu",
                              "--password-env", "MAILSHIFT_ADMIN_PASSWORD")
        assert made.returncode == 0, made.stderr
        with os.fdopen(os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as log:
            self._process = subprocess.Popen([sys.executable, "-m", "shim.cli", "serve"], env=self._env,
                                             stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"mailshift serve exited: {self.log.read_text(errors='replace')}")
            try:
                for port in (self.port, self.https_port):
                    if port is not None:  # both doors: HTTPS may start listening a moment after HTTP
                        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                            pass
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"mailshift serve did not start: {self.log.read_text(errors='replace')}")
                time.sleep(0.1)

    def stop(self) -> None:
        """Stop the service (SIGTERM, then SIGKILL after a while)."""
        if self._process is None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def __enter__(self) -> MailshiftService:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()
