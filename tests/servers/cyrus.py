"""Start and stop isolated, throwaway Cyrus IMAP servers on loopback.

Cyrus is not installed as a package (``cyrus-imapd`` conflicts with ``dovecot-imapd``):
``make system-deps`` unpacks Debian's .debs into ``/var/cache/mailshift/cyrus/root``
(``tests/servers/install-cyrus.sh``), or ``$MAILSHIFT_CYRUS_ROOT`` names another unpacked tree.
Each :class:`CyrusServer` runs that tree's ``master`` with its own ``imapd.conf``,
``cyrus.conf``, sasldb, ports, log and mail in a short temporary folder, and
:meth:`CyrusServer.stop` kills its process group and deletes the folder.

Started by root, every process runs as the system user ``cyrus`` (created when missing, in group
``mail``); started by anybody else, as the current user and group (Cyrus's ``cyrus_user`` and
``cyrus_group`` name them, so it never tries to switch). Users live in the instance's sasldb
(``saslpasswd2``); their mailboxes are created over IMAP by the admin ``cyrus``, who may also log
in with SASL PLAIN for any user (authcid ``cyrus``, authzid the user).

Layouts: ``"dot"`` sets ``unixhierarchysep: no`` and ``altnamespace: no`` (separator ".", personal
namespace ``INBOX.``, other users under ``user.``); ``"slash"`` sets both to yes (separator "/",
personal namespace "", other users under ``Other Users/``). Cyrus 3's own defaults are both yes.

Example::

    with CyrusServer(layout="dot") as server:
        server.add_user("alice", "secret")
        ...  # IMAP on server.host:server.port (STARTTLS offered) or server.ssl_port (implicit TLS)
"""

from __future__ import annotations

import atexit
import contextlib
import grp
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from tests.servers.tls import self_signed

__all__ = [
    "CYRUS_ROOT",
    "CyrusError",
    "CyrusServer",
    "Layout",
    "cyrus_missing_message",
]

#: The unpacked Cyrus tree (``dpkg-deb -x`` of cyrus-common and cyrus-imapd).
CYRUS_ROOT = Path(os.environ.get("MAILSHIFT_CYRUS_ROOT") or "/var/cache/mailshift/cyrus/root")

_BIN = CYRUS_ROOT / "usr" / "lib" / "cyrus" / "bin"

#: ``saslpasswd2`` from sasl2-bin, installed as a package (it does not conflict with Dovecot).
SASLPASSWD2 = Path("/usr/sbin/saslpasswd2")

#: The system user that owns an instance started by root (Debian's cyrus-common uses it too).
_ROOT_USER = "cyrus"
_ROOT_GROUP = "mail"

Layout = Literal["slash", "dot"]

#: User names this fixture accepts (Cyrus allows more; these are safe in both layouts).
_USER_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")

#: The name the server calls itself; also the SASL realm of the sasldb entries.
_SERVER_NAME = "mailshift-cyrus"

_START_TIMEOUT_SECONDS = 20.0
_TERM_GRACE_SECONDS = 2.0
_STOP_TIMEOUT_SECONDS = 10.0
_START_ATTEMPTS = 3

#: ``sh -c`` script that runs master (its arguments; the log file is ``$0``) in the background,
#: prints master's pid, then waits for the end of its standard input. That comes when the test
#: process closes the pipe or dies in any way (SIGKILL included); the script then SIGKILLs its
#: process group: master and every service master started. (Master itself given SIGTERM after
#: its parent died was seen spinning at full CPU instead of exiting.)
_WATCHDOG = '"$@" </dev/null >>"$0" 2>&1 & echo $!; exec >&-; read -r _; kill -KILL 0'

#: Instances started by this process and not stopped yet, stopped at interpreter exit (Ctrl-C).
_live: set[CyrusServer] = set()
_live_lock = threading.Lock()


class CyrusError(RuntimeError):
    """Raised when a Cyrus instance cannot be started or controlled; carries its log text."""


def cyrus_missing_message() -> str | None:
    """Tell why Cyrus cannot run here, or None when the unpacked tree and saslpasswd2 are there.

    Returns:
        A sentence for the user, or None.
    """
    missing = [
        str(path)
        for path in (_BIN / "master", _BIN / "imapd", _BIN / "ctl_cyrusdb", SASLPASSWD2)
        if not (path.is_file() and os.access(path, os.X_OK))
    ]
    if not missing:
        return None
    return (
        f"Cyrus IMAP is not installed ({', '.join(missing)} missing); the Cyrus tests need it: "
        "run `make system-deps` (or `make test`), which unpacks Debian's cyrus-imapd beside Dovecot "
        "with tests/servers/install-cyrus.sh"
    )


def _library_dir() -> Path:
    """The folder of the unpacked ``libcyrus*.so`` (the binaries' RUNPATH does not name it)."""
    for path in sorted((CYRUS_ROOT / "usr" / "lib").glob("*/libcyrus_imap.so.*")):
        return path.parent
    raise CyrusError(f"no libcyrus_imap.so under {CYRUS_ROOT / 'usr' / 'lib'}: {cyrus_missing_message()}")


def _free_port() -> int:
    """Ask the kernel for a loopback TCP port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    """Tell whether a process exists and is not a zombie (a non-reaping init may keep zombies)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _wait_gone(pids: Sequence[int], timeout: float) -> bool:
    """Wait until none of the processes lives; tell whether that happened in time."""
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _stop_leftovers() -> None:
    """Stop the instances a test run left running (an interrupted session, a failed teardown)."""
    with _live_lock:
        servers = list(_live)
    for server in servers:
        server.stop()


atexit.register(_stop_leftovers)


class CyrusServer:
    """One isolated Cyrus IMAP instance serving IMAP on 127.0.0.1.

    Attributes:
        host: Always ``"127.0.0.1"``.
        port: Plain IMAP port (STARTTLS offered, plaintext logins allowed).
        ssl_port: Implicit-TLS IMAP port.
        layout: ``"dot"`` or ``"slash"`` (see the module's docstring).
        separator: The hierarchy separator, "." or "/".
        prefix: The personal namespace's prefix, ``"INBOX."`` or ``""``.
        munge8bit: Whether APPEND turns 8-bit header bytes into ``X`` (Cyrus's default).
        admin: The administrator, ``"cyrus"``; may act as any user with SASL PLAIN.
        admin_password: The administrator's password.
        root: The instance's folder; everything of the instance is under it.
        ca_file: The server's self-signed certificate (PEM), usable as a trust anchor.
        users: Passwords of the users added so far, by user name.
    """

    host = "127.0.0.1"

    def __init__(self, *, layout: Layout = "dot", munge8bit: bool = True, base_dir: str | Path = "/tmp") -> None:
        """Prepare an instance; nothing runs before :meth:`start`.

        Args:
            layout: ``"dot"`` (separator ".", ``INBOX.`` prefix) or ``"slash"``
                (``unixhierarchysep`` and ``altnamespace``: separator "/", no prefix).
            munge8bit: Cyrus's ``munge8bit`` option (8-bit header bytes become ``X`` on APPEND).
            base_dir: Where the instance's folder is made.
        """
        if layout not in ("slash", "dot"):
            raise ValueError(f"unknown layout {layout!r}: use 'slash' or 'dot'")
        self.layout: Layout = layout
        self.separator = "/" if layout == "slash" else "."
        self.prefix = "" if layout == "slash" else "INBOX."
        self.munge8bit = munge8bit
        self.base_dir = Path(base_dir)
        self.admin = "cyrus"
        self.admin_password = secrets.token_hex(8)
        self.users: dict[str, str] = {}
        self.port = 0
        self.ssl_port = 0
        self.root = Path()
        self.ca_file = Path()
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._master: int | None = None
        self._run_as: dict[str, Any] = {}
        self._account = ("", "")

    # ----------------------------------------------------------------- life cycle

    def __enter__(self) -> CyrusServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True while the master process lives."""
        return self._master is not None and _alive(self._master)

    @property
    def log_path(self) -> Path:
        """Master's standard output and error, which its services inherit (Cyrus logs the rest
        to syslog, which these machines do not run)."""
        return self.root / "master.log"

    def log_text(self) -> str:
        """Return the log written so far ("" when there is none)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self) -> None:
        """Write the configuration, start ``master`` and wait until both ports greet.

        Raises:
            CyrusError: Cyrus is missing, cannot run as this user, or did not start; the message
                holds its log.
        """
        missing = cyrus_missing_message()
        if missing:
            raise CyrusError(missing)
        if self.root != Path():
            raise CyrusError("a CyrusServer starts only once: make a new one")
        self._account = self._identity()
        self.root = Path(tempfile.mkdtemp(prefix="cy-", dir=self.base_dir))
        with _live_lock:
            _live.add(self)
        try:
            self._prepare()
            self._set_password(self.admin, self.admin_password)
            for attempt in range(1, _START_ATTEMPTS + 1):
                self.port, self.ssl_port = _free_port(), _free_port()
                (self.root / "cyrus.conf").write_text(self._cyrus_conf())
                try:
                    self._launch()
                    return
                except CyrusError:
                    # Another process may have taken a port between our probe and master's bind.
                    if attempt == _START_ATTEMPTS:
                        raise
                    self._kill()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Kill master and its services, wait for them to end, delete the instance folder.

        Safe to call more than once, and on an instance that failed to start.
        """
        self._kill()
        if self.root != Path() and self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)
        with _live_lock:
            _live.discard(self)

    # ----------------------------------------------------------------- users

    def add_user(self, name: str, password: str) -> str:
        """Add a user to the sasldb and create the user's INBOX over IMAP as the admin.

        Args:
            name: User name (lower-case letters, digits, ``-_``); must be new.
            password: Plain password (no newline).

        Returns:
            The user name, for chaining.
        """
        if not _USER_NAME.fullmatch(name) or name == self.admin:
            raise ValueError(f"invalid user name {name!r}: use lower-case letters, digits, '-' and '_'")
        if "\n" in password or not password:
            raise ValueError("passwords must be non-empty, without newlines")
        if name in self.users:
            raise ValueError(f"user {name!r} already exists")
        if not self.running:
            raise CyrusError("start the server before adding users (mailboxes are created over IMAP)")
        self._set_password(name, password)
        with IMAPClient(self.host, self.port, ssl=False, timeout=30) as imap:
            imap.login(self.admin, self.admin_password)
            try:
                imap.create_folder(self.separator.join(("user", name)))
            except IMAPClientError as exc:
                raise CyrusError(f"CREATE of {name!r}'s mailbox failed: {exc}\n{self.log_text()}") from exc
        self.users[name] = password
        return name

    # ----------------------------------------------------------------- internals

    def _identity(self) -> tuple[str, str]:
        """The user and group every process of the instance runs as.

        Raises:
            CyrusError: The current user or group has no name (Cyrus takes them by name).
        """
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(_ROOT_USER)
            except KeyError:
                subprocess.run(
                    ["useradd", "--system", "--gid", _ROOT_GROUP, "--home-dir", "/nonexistent",
                     "--no-create-home", "--shell", "/usr/sbin/nologin", _ROOT_USER],
                    check=True, capture_output=True,
                )
            entry = pwd.getpwnam(_ROOT_USER)
            self._run_as = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
            return _ROOT_USER, grp.getgrgid(entry.pw_gid).gr_name
        uid, gid = os.geteuid(), os.getegid()
        try:
            return pwd.getpwuid(uid).pw_name, grp.getgrgid(gid).gr_name
        except KeyError:
            raise CyrusError(
                f"uid {uid} / gid {gid} has no name: Cyrus started by a user other than root runs "
                "as that user and group, which it looks up by name; run the tests as a user and "
                "group listed in /etc/passwd and /etc/group"
            ) from None

    def _give(self, path: Path) -> None:
        """Hand a path written by the test process to the instance's user (needed only as root)."""
        if self._run_as:
            os.chown(path, self._run_as["user"], self._run_as["group"])

    def _prepare(self) -> None:
        """Create the instance's folders, certificate and imapd.conf."""
        self.root.chmod(0o711)
        # conf/socket holds the unix sockets of the idle and notify services.
        for folder in ("conf", "conf/socket", "spool"):
            (self.root / folder).mkdir(mode=0o700)
            self._give(self.root / folder)
        cert, key = self_signed()
        self.ca_file = self.root / "cert.pem"
        self.ca_file.write_bytes(cert)
        key_path = self.root / "key.pem"
        key_path.touch(mode=0o600)
        key_path.write_bytes(key)
        self._give(key_path)
        (self.root / "imapd.conf").write_text(self._imapd_conf())
        self.log_path.touch(mode=0o600)
        self._give(self.log_path)

    def _set_password(self, name: str, password: str) -> None:
        """Put a user into the instance's sasldb (as the instance's user, who must read it)."""
        result = subprocess.run(
            [str(SASLPASSWD2), "-f", str(self.root / "conf" / "sasldb"), "-u", _SERVER_NAME, "-p", "-c", name],
            input=password.encode(),
            capture_output=True,
            check=False,
            **self._run_as,
        )
        if result.returncode != 0:
            raise CyrusError(f"saslpasswd2 for {name!r} failed: {result.stderr.decode(errors='replace').strip()}")

    def _imapd_conf(self) -> str:
        user, group = self._account
        switch = "yes" if self.layout == "slash" else "no"
        return f"""\
# Generated by tests/servers/cyrus.py for one throwaway test instance.
configdirectory: {self.root}/conf
partition-default: {self.root}/spool
servername: {_SERVER_NAME}
syslog_prefix: {self.root.name}
cyrus_user: {user}
cyrus_group: {group}
admins: {self.admin}
unixhierarchysep: {switch}
altnamespace: {switch}
munge8bit: {"yes" if self.munge8bit else "no"}
allowplaintext: yes
failedloginpause: 0
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: {self.root}/conf/sasldb
sasl_mech_list: PLAIN LOGIN
tls_server_cert: {self.ca_file}
tls_server_key: {self.root}/key.pem
"""

    def _cyrus_conf(self) -> str:
        config = f"-C {self.root}/imapd.conf"
        return f"""\
# Generated by tests/servers/cyrus.py for one throwaway test instance.
START {{
  recover cmd="{_BIN}/ctl_cyrusdb {config} -r"
}}
SERVICES {{
  imap cmd="{_BIN}/imapd {config}" listen="{self.host}:{self.port}" prefork=0
  imaps cmd="{_BIN}/imapd {config} -s" listen="{self.host}:{self.ssl_port}" prefork=0
}}
EVENTS {{
}}
DAEMON {{
}}
"""

    def _launch(self) -> None:
        """Start ``master`` in the foreground under a watchdog in a new session; wait for both ports."""
        environment = dict(os.environ, LD_LIBRARY_PATH=str(_library_dir()))
        command = [
            str(_BIN / "master"), "-C", str(self.root / "imapd.conf"), "-M", str(self.root / "cyrus.conf"),
            "-p", str(self.root / "conf" / "master.pid"), "-D",
        ]
        self._watchdog = subprocess.Popen(
            ["sh", "-c", _WATCHDOG, str(self.log_path), *command], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env=environment, cwd=self.root, start_new_session=True, **self._run_as,
        )
        assert self._watchdog.stdout is not None
        with self._watchdog.stdout:
            self._master = int(self._watchdog.stdout.readline())
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        for port in (self.port, self.ssl_port):
            while not self._greets(port):
                if not self.running or time.monotonic() > deadline:
                    raise CyrusError(
                        f"Cyrus did not answer on {self.host}:{port}\n--- {self.log_path}\n{self.log_text()}"
                    )
                time.sleep(0.02)

    def _greets(self, port: int) -> bool:
        """Tell whether the port is ours and ready: plain IMAP greets as Cyrus, TLS accepts."""
        try:
            with socket.create_connection((self.host, port), timeout=2) as sock:
                if port == self.port:
                    greeting = sock.recv(512)
                    return greeting.startswith(b"* OK") and _SERVER_NAME.encode() in greeting
                return True
        except OSError:
            return False

    def _processes(self) -> list[int]:
        """The live processes of this instance: master's process group, and any process whose
        command line names this instance's imapd.conf (a service that left the group)."""
        if self.root == Path():
            return []
        config = f"{self.root}/imapd.conf".encode()
        group = self._watchdog.pid if self._watchdog is not None else None
        found: list[int] = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            try:
                ours = config in (entry / "cmdline").read_bytes() or (group is not None and os.getpgid(pid) == group)
            except (OSError, ProcessLookupError):
                continue  # ended meanwhile, or not ours to read
            if ours and _alive(pid):
                found.append(pid)
        return found

    def _kill(self) -> None:
        """SIGTERM master (it stops its services), let the watchdog SIGKILL what is left of the
        process group, then SIGKILL any other process of the instance."""
        if self._master is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._master, signal.SIGTERM)
            _wait_gone([self._master], _TERM_GRACE_SECONDS)
            self._master = None
        if self._watchdog is not None:
            assert self._watchdog.stdin is not None
            with contextlib.suppress(OSError):
                self._watchdog.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._watchdog.wait(timeout=_STOP_TIMEOUT_SECONDS)
            self._watchdog = None
        for _ in range(3):
            victims = self._processes()
            if not victims:
                break
            for pid in victims:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            _wait_gone(victims, _STOP_TIMEOUT_SECONDS)
