"""Start and stop isolated, throwaway Dovecot IMAP servers on loopback.

Importable without pytest: the benchmark uses it too. Each :class:`DovecotServer` lives in its own
short temporary folder (unix socket paths must stay under 108 bytes) with its own configuration,
users, TLS certificate, ports, log and mail, and disappears with :meth:`DovecotServer.stop`.

Started by root, mail belongs to ``mail`` and Dovecot runs its services as ``dovecot`` and
``dovenull``. Started by anybody else, every process runs as the current user and group, unchrooted;
both need a name (passwd and group entries) and the group may not be root's.
``tests/integration/test_dovecot_nonroot.py`` runs that path as ``nobody``.

Example::

    with DovecotServer(layout="dot") as server:
        user = server.add_user("alice", "secret")
        ...  # IMAP on server.host:server.port (STARTTLS) or server.ssl_port (implicit TLS)
"""

from __future__ import annotations

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
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal

from tests.servers.tls import self_signed

__all__ = [
    "DOVECOT",
    "SPECIAL_USE",
    "DovecotError",
    "DovecotLayout",
    "DovecotServer",
    "Layout",
    "dovecot_missing_message",
]

#: The Dovecot master binary (Debian's ``dovecot-core``/``dovecot-imapd``).
DOVECOT = Path("/usr/sbin/dovecot")

_DH_PARAMS = Path("/usr/share/dovecot/dh.pem")

#: Special-use folders declared (not auto-created) in the inbox namespace: name -> attribute.
SPECIAL_USE: dict[str, str] = {
    "Sent": "\\Sent",
    "Trash": "\\Trash",
    "Junk": "\\Junk",
    "Drafts": "\\Drafts",
    "Archive": "\\Archive",
}

#: Mail files belong to this system user when the tests run as root (Dovecot refuses uid 0).
_ROOT_MAIL_OWNER = "mail"

#: Dovecot's default internal user, which runs the auth process when started as root.
_ROOT_INTERNAL_USER = "dovecot"

#: Services of ours whose ``user`` is Dovecot's internal or login user. Started by anyone but root,
#: Dovecot runs them as that user (the current one) and would switch them to the group of its
#: passwd entry, which fails when the current group is another one (``sg``, ``--user uid:gid``).
_GROUP_SWITCHING_SERVICES = ("anvil", "auth", "imap-login", "stats")

#: Services that Dovecot chroots by default; only root can chroot.
_CHROOTED_SERVICES = ("anvil", "imap-login")

#: The naming styles other test servers (Cyrus) have too.
Layout = Literal["slash", "dot"]

#: Every layout a :class:`DovecotServer` can have: the two naming styles and two storage quirks.
DovecotLayout = Literal["slash", "dot", "slash_dots", "mbox"]

#: Each layout's hierarchy separator, personal prefix and ``mail_location``.
_LAYOUTS: dict[str, tuple[str, str, str]] = {
    "slash": ("/", "", "maildir:~/Maildir:LAYOUT=fs"),
    "dot": (".", "INBOX.", "maildir:~/Maildir"),
    "slash_dots": ("/", "", "maildir:~/Maildir"),
    "mbox": (".", "", "mbox:~/mail:INBOX=~/mail/inbox"),
}

#: Dovecot's default ``auth_username_chars``.
_USER_NAME = re.compile(r"[A-Za-z0-9._@-]+")

_START_TIMEOUT_SECONDS = 20.0
_STOP_TIMEOUT_SECONDS = 10.0
_TERM_GRACE_SECONDS = 1.0
_START_ATTEMPTS = 3


class DovecotError(RuntimeError):
    """Raised when a Dovecot instance cannot be started or controlled; carries its log text."""


def dovecot_missing_message() -> str | None:
    """Tell why Dovecot cannot run here, or None when the binary is installed.

    Returns:
        A sentence for the user, or None.
    """
    if DOVECOT.is_file() and os.access(DOVECOT, os.X_OK):
        return None
    return (
        f"Dovecot is not installed ({DOVECOT} is missing); the integration tests and the benchmark "
        "need it: run `make test` (or `make system-deps`), which installs dovecot-imapd."
    )


def _account_names() -> tuple[str, str]:
    """Name the current (effective) user and group, which run all of an unprivileged Dovecot.

    Returns:
        The user name and the group name.

    Raises:
        DovecotError: The user or the group has no name (Dovecot takes them by name), or the group
            is root's (Dovecot refuses mail users of gid 0).
    """
    uid, gid = os.geteuid(), os.getegid()
    if gid == 0:
        raise DovecotError(
            f"uid {uid} runs with gid 0: Dovecot started by a user other than root gives its mail "
            "to that group and refuses gid 0; run the tests with another group"
        )
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        raise DovecotError(
            f"uid {uid} has no passwd entry: Dovecot started by a user other than root runs as "
            "that user and needs its name; run the tests as a user listed in /etc/passwd"
        ) from None
    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        raise DovecotError(
            f"gid {gid} has no group entry: Dovecot started by a user other than root runs with "
            "that group and needs its name; run the tests with a group listed in /etc/group"
        ) from None
    return user, group


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


def _signal(pids: Sequence[int], sig: signal.Signals) -> None:
    """Send a signal to processes, ignoring those already gone."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _wait_gone(pids: Sequence[int], timeout: float = _STOP_TIMEOUT_SECONDS) -> bool:
    """Wait until none of the processes lives; tell whether that happened in time."""
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


class DovecotServer:
    """One isolated Dovecot instance serving IMAP on 127.0.0.1.

    Each user has its own passwd-file, read by Dovecot at the user's first login, so
    :meth:`add_user` works while the server runs. A master user (``user*master`` logins, or
    SASL PLAIN with authcid=master and authzid=user) can open any mailbox.

    Attributes:
        host: Always ``"127.0.0.1"``.
        port: Plain IMAP port (STARTTLS offered).
        ssl_port: Implicit-TLS IMAP port.
        layout: ``"slash"`` (separator "/", no prefix, LAYOUT=fs), ``"dot"`` (separator ".",
            prefix "INBOX.", Maildir++), ``"slash_dots"`` (separator "/", no prefix, Maildir++
            on disk: "." is refused in names) or ``"mbox"`` (separator ".", no prefix, mbox
            files under ``~/mail``: folders holding mail are ``\\NoInferiors``, "/" is refused
            in names, a message not ending in CRLF gets one).
        separator: The personal namespace's hierarchy separator.
        prefix: The personal namespace's prefix.
        master_user: Name of the master user.
        master_password: Password of the master user.
        max_mail_size: Largest message APPEND accepts, in bytes, or None for no limit.
        fsync: Whether Dovecot fsyncs mail (``mail_fsync = optimized``) or not (``never``).
        special_use: Folder name -> special-use attribute declared in the configuration; a
            folder carries its attribute once it exists (none is created in advance).
        root: The instance's folder; everything of the instance is under it.
        ca_file: The server's self-signed certificate (PEM), usable as a trust anchor.
        users: Passwords of the users added so far, by user name.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        *,
        layout: DovecotLayout = "slash",
        max_mail_size: int | None = None,
        fsync: bool = False,
        plugins: Sequence[str] = (),
        base_dir: str | Path = "/tmp",
        special_use: Mapping[str, str] | None = None,
    ) -> None:
        """Prepare an instance; nothing runs before :meth:`start`.

        Args:
            layout: Mailbox naming and on-disk layout (see the class attributes).
            max_mail_size: When set, the quota plugin rejects APPENDs of larger messages.
            fsync: Fsync mail like production servers do (slower); off by default for tests.
            plugins: Extra Dovecot mail plugins; names starting with ``imap_`` load for IMAP only.
            base_dir: Where the instance's folder is made (its unix sockets must stay under
                108 bytes): e.g. ``/dev/shm`` to keep its mail off the disk other instances use.
            special_use: Folder name -> special-use attribute, declared in the configuration
                without creating the folder (it carries the attribute once it exists);
                :data:`SPECIAL_USE` when None.
        """
        if layout not in _LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}: use one of {', '.join(_LAYOUTS)}")
        self.layout: DovecotLayout = layout
        self.separator, self.prefix, self._location = _LAYOUTS[layout]
        self.special_use = dict(SPECIAL_USE if special_use is None else special_use)
        self.max_mail_size = max_mail_size
        self.fsync = fsync
        self.plugins = tuple(plugins)
        self.base_dir = Path(base_dir)
        self.master_user = "master"
        self.master_password = secrets.token_hex(8)
        self.users: dict[str, str] = {}
        self.port = 0
        self.ssl_port = 0
        self.root = Path()
        self.ca_file = Path()
        self._pid: int | None = None
        if os.geteuid() == 0:
            owner = pwd.getpwnam(_ROOT_MAIL_OWNER)
            self._mail_uid, self._mail_gid = owner.pw_uid, owner.pw_gid
        else:
            self._mail_uid, self._mail_gid = os.geteuid(), os.getegid()

    # ----------------------------------------------------------------- life cycle

    def __enter__(self) -> DovecotServer:
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
        return self._pid is not None and _alive(self._pid)

    @property
    def log_path(self) -> Path:
        """The instance's log file (errors, logins, everything)."""
        return self.root / "dovecot.log"

    @property
    def config_path(self) -> Path:
        """The instance's dovecot.conf."""
        return self.root / "dovecot.conf"

    def log_text(self) -> str:
        """Return the log written so far ("" when there is none)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self) -> None:
        """Write the configuration, start Dovecot and wait until both ports greet.

        Raises:
            DovecotError: Dovecot is missing or did not start; the message holds its log.
        """
        missing = dovecot_missing_message()
        if missing:
            raise DovecotError(missing)
        if self.root != Path():
            raise DovecotError("a DovecotServer starts only once: make a new one")
        if os.geteuid() != 0:
            _account_names()  # fail before anything is written
        self.root = Path(tempfile.mkdtemp(prefix="ms-", dir=self.base_dir))
        try:
            self._prepare()
            for attempt in range(1, _START_ATTEMPTS + 1):
                self.port, self.ssl_port = _free_port(), _free_port()
                self.config_path.write_text(self._config())
                try:
                    self._launch()
                    return
                except DovecotError as error:
                    # Another process may have taken a port between our probe and Dovecot's bind.
                    if "Address already in use" not in str(error) or attempt == _START_ATTEMPTS:
                        raise
                    self.log_path.unlink(missing_ok=True)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Kill the master and its children, wait for them to end, delete the instance folder.

        Safe to call more than once, and on an instance that failed to start.
        """
        self._pid = None
        # Every process at once, then SIGKILL after a short grace: a login process blocked in
        # a handshake with the (already dead) stats process ignores SIGTERM for 5 s, and the
        # master alone would wait for it. Scan again in case a process was forked meanwhile.
        for _ in range(3):
            victims = self._processes()
            if not victims:
                break
            _signal(victims, signal.SIGTERM)
            if not _wait_gone(victims, _TERM_GRACE_SECONDS):
                _signal(victims, signal.SIGKILL)
                _wait_gone(victims)
        if self.root != Path() and self.root.exists():
            shutil.rmtree(self.root)

    # ----------------------------------------------------------------- users and mail files

    def add_user(self, name: str, password: str) -> str:
        """Add a user, who can log in at once (also while the server runs).

        Args:
            name: User name (letters, digits, ``.-_@``); must be new.
            password: Plain password.

        Returns:
            The user name, for chaining.
        """
        if not _USER_NAME.fullmatch(name) or name in (self.master_user, ".", ".."):
            raise ValueError(f"invalid user name {name!r}: use letters, digits and .-_@")
        if ":" in password or "\n" in password:
            raise ValueError("passwords may not contain ':' or newlines")
        if name in self.users:
            raise ValueError(f"user {name!r} already exists")
        home = self.home(name)
        if self.layout == "mbox":
            self.make_dirs(home / "mail")
        else:
            self.make_dirs(home / "Maildir" / "cur", home / "Maildir" / "new", home / "Maildir" / "tmp")
        self.users[name] = password
        # One passwd-file per user: Dovecot stats a passwd-file at most once a second and would
        # miss a user appended to a shared file in the same second as another lookup; a new
        # file is always read at its first lookup.
        self._write_private(
            self.root / "users" / name,
            f"{name}:{{PLAIN}}{password}:{self._mail_uid}:{self._mail_gid}::{home}::\n",
        )
        return name

    def home(self, user: str) -> Path:
        """Return a user's home folder."""
        return self.root / "home" / user

    def maildir(self, user: str) -> Path:
        """Return the root of a user's Maildir (the INBOX lives there)."""
        return self.home(user) / "Maildir"

    def make_dirs(self, *paths: Path) -> None:
        """Create folders (and missing parents) owned by the mail user.

        Args:
            paths: Folders, each inside the instance folder.
        """
        for path in paths:
            missing: list[Path] = []
            current = path
            while not current.exists():
                missing.append(current)
                current = current.parent
            for folder in reversed(missing):
                folder.mkdir(mode=0o700, exist_ok=True)
                self.give(folder)

    def give(self, path: Path) -> None:
        """Hand a file or folder written by the tests to the mail user (needed only as root)."""
        if os.geteuid() == 0:
            os.chown(path, self._mail_uid, self._mail_gid)

    # ----------------------------------------------------------------- internals

    def _prepare(self) -> None:
        """Create the instance's folders, certificate and master user file."""
        # The login (dovenull), internal (dovecot) and mail users must all walk through root.
        self.root.chmod(0o711)
        (self.root / "home").mkdir(mode=0o711)
        cert, key = self_signed()
        self.ca_file = self.root / "cert.pem"
        self.ca_file.write_bytes(cert)
        key_path = self.root / "key.pem"
        key_path.touch(mode=0o600)
        key_path.write_bytes(key)
        self._write_private(
            self.root / "masters", f"{self.master_user}:{{PLAIN}}{self.master_password}\n"
        )
        (self.root / "users").mkdir(mode=0o750)
        self._share_with_auth(self.root / "users")

    def _write_private(self, path: Path, text: str) -> None:
        """Atomically write a credentials file readable by Dovecot's auth processes only."""
        tmp = path.with_name(path.name + ".tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        with os.fdopen(fd, "w") as stream:
            stream.write(text)
        self._share_with_auth(tmp)
        os.replace(tmp, path)

    @staticmethod
    def _share_with_auth(path: Path) -> None:
        """Give a root-owned path to the group of Dovecot's internal user, which runs auth."""
        if os.geteuid() == 0:
            os.chown(path, 0, pwd.getpwnam(_ROOT_INTERNAL_USER).pw_gid)

    def _pid_from_file(self) -> int | None:
        """Read the master's pid from ``base_dir/master.pid`` (None before it exists)."""
        try:
            return int((self.root / "run" / "master.pid").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def _launch(self) -> None:
        """Run the daemonising ``dovecot -c`` and wait for the ports to greet."""
        # The daemon inherits stdout and stderr: a pipe would stay open as long as it runs.
        errors = self.root / "start.err"
        with errors.open("w+") as stream:
            result = subprocess.run(
                [str(DOVECOT), "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=stream,
                stderr=stream,
                timeout=_START_TIMEOUT_SECONDS,
                check=False,
            )
        if result.returncode != 0:
            raise DovecotError(
                f"dovecot exited with {result.returncode}: {errors.read_text().strip()}\n"
                f"--- {self.log_path}\n{self.log_text()}"
            )
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        while self._pid is None and time.monotonic() < deadline:
            self._pid = self._pid_from_file()
            if self._pid is None:
                time.sleep(0.01)
        for port in (self.port, self.ssl_port):
            while not self._accepts(port):
                if not self.running or time.monotonic() > deadline:
                    log = self.log_text()
                    self._kill_all()
                    raise DovecotError(
                        f"Dovecot did not answer on {self.host}:{port}\n--- {self.log_path}\n{log}"
                    )
                time.sleep(0.02)

    def _kill_all(self) -> None:
        """Kill a half-started instance, keeping the folder so that a retry can reuse it."""
        self._pid = None
        victims = self._processes()
        _signal(victims, signal.SIGKILL)
        _wait_gone(victims)

    def _processes(self) -> list[int]:
        """Find the live processes of this instance.

        Returns:
            The master (from master.pid, or by its command line) and every process whose title
            Dovecot set to ``dovecot-<instance_name>/<service>``: children, and orphans too.
        """
        if self.root == Path():
            return []
        master = f"{DOVECOT}\0-c\0{self.config_path}\0".encode()
        title = f"dovecot-{self.root.name}/".encode()
        pid = self._pid_from_file()
        found = [pid] if pid is not None and _alive(pid) else []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue  # ended meanwhile, or not ours to read
            ours = command == master or command.startswith(title)
            if ours and int(entry.name) not in found and _alive(int(entry.name)):
                found.append(int(entry.name))
        return found

    def _accepts(self, port: int) -> bool:
        """Tell whether a TCP connection to the port succeeds (for IMAP: and it greets)."""
        try:
            with socket.create_connection((self.host, port), timeout=2) as sock:
                if port == self.port:
                    return sock.recv(64).startswith(b"* OK")
                return True
        except OSError:
            return False

    def _config(self) -> str:
        """Render the instance's dovecot.conf."""
        root = self.root
        identity = f"first_valid_uid = {self._mail_uid}\nfirst_valid_gid = {self._mail_gid}\n"
        # Settings added to a service block, by service name.
        service: dict[str, str] = dict.fromkeys(_GROUP_SWITCHING_SERVICES + _CHROOTED_SERVICES, "")
        if os.geteuid() != 0:
            # Everything runs as the current user and group, which can neither chroot nor switch.
            me, group = _account_names()
            identity += (
                f"default_login_user = {me}\ndefault_internal_user = {me}\n"
                f"default_internal_group = {group}\n"
            )
            for name in _GROUP_SWITCHING_SERVICES:
                service[name] += f"  group = {group}\n"
            for name in _CHROOTED_SERVICES:
                service[name] += "  chroot =\n"
        mail_plugins = [p for p in self.plugins if not p.startswith("imap_")]
        imap_plugins = [p for p in self.plugins if p.startswith("imap_")]
        quota = ""
        if self.max_mail_size is not None:
            mail_plugins.append("quota")
            quota = (
                "plugin {\n"
                "  quota = count:User quota\n"
                "  quota_vsizes = yes\n"
                "  quota_rule = *:storage=100G\n"
                f"  quota_max_mail_size = {self.max_mail_size}\n"
                "}\n"
            )
        mailboxes = "".join(
            f'  mailbox "{name}" {{\n    special_use = {flag}\n    auto = no\n  }}\n'
            for name, flag in self.special_use.items()
        )
        ssl_dh = f"ssl_dh = <{_DH_PARAMS}\n" if _DH_PARAMS.exists() else ""
        return f"""\
# Generated by tests/servers/dovecot.py for one throwaway test instance.
instance_name = {root.name}
base_dir = {root}/run
state_dir = {root}/state
log_path = {self.log_path}
listen = 127.0.0.1
protocols = imap
{identity}
ssl = yes
ssl_cert = <{self.ca_file}
ssl_key = <{root}/key.pem
{ssl_dh}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_master_user_separator = *
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = {root}/masters
  master = yes
  result_success = continue
}}
passdb {{
  driver = passwd-file
  args = username_format=%u {root}/users/%u
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/users/%u
}}

mail_location = {self._location}
mail_fsync = {"optimized" if self.fsync else "never"}
mail_max_userip_connections = 1000
mail_plugins = $mail_plugins {" ".join(mail_plugins)}
protocol imap {{
  mail_plugins = $mail_plugins {" ".join(imap_plugins)}
}}
{quota}
namespace inbox {{
  inbox = yes
  separator = {self.separator}
  prefix = {self.prefix}
{mailboxes}}}

# Nobody may use the penalty socket: Dovecot then disables its auth penalty, which would
# otherwise delay every login from 127.0.0.1 by up to 15 s after a failed one.
service anvil {{
{service["anvil"]}  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service auth {{
{service["auth"]}}}
service stats {{
{service["stats"]}}}
service imap-login {{
{service["imap-login"]}  inet_listener imap {{
    port = {self.port}
  }}
  inet_listener imaps {{
    port = {self.ssl_port}
    ssl = yes
  }}
}}
service imap {{
  process_limit = 1000
}}
"""
