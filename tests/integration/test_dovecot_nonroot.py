"""The Dovecot fixture started by a user other than root, the way a developer's ``make test`` runs.

The suite runs as root here, where the fixture hands mail to ``mail`` and lets Dovecot switch its
services to ``dovecot`` and ``dovenull``; as anybody else every process runs as the current user
and group, with no chroot. To run that path, these tests copy the fixture (and what it imports)
to a world-readable folder and run a stdlib-only script there as ``nobody`` with a Python that
account can execute (the venv's lives under /root). The script starts a server per layout, logs
in over plain IMAP, STARTTLS and implicit TLS (verifying the server's certificate), as the master
user too, appends and reads back, stops the server and prints what it saw as JSON; the tests
assert on that. Run by a user other than root, the same script runs as that user.
"""

from __future__ import annotations

import contextlib
import grp
import inspect
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.servers.dovecot import dovecot_missing_message

pytestmark = pytest.mark.integration

_REPO = Path(__file__).resolve().parents[2]

#: The fixture and every module it imports from the repository; the rest is the standard library
#: (and ``cryptography``, which engine/tls.py imports to make the certificate).
_FIXTURE_FILES = (
    "tests/__init__.py",
    "tests/servers/__init__.py",
    "tests/servers/dovecot.py",
    "tests/servers/tls.py",
    "engine/__init__.py",
    "engine/tls.py",
)

#: The unprivileged account the tests use when they run as root.
_ACCOUNT = "nobody"

#: A group other than the account's primary one, tried in this order, for the group-switch test.
_OTHER_GROUPS = ("users", "nogroup")

_CHILD_TIMEOUT_SECONDS = 60.0

_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"


# --------------------------------------------------------------------------- what the child runs
# Only these functions' source reaches the child, so they import what they use themselves.


def _serve(*layouts: str) -> list[dict[str, Any]]:
    """Start a server per layout, use it over every door, stop it; report what happened.

    Args:
        layouts: ``"slash"`` and/or ``"dot"``.

    Returns:
        One report per layout (JSON-ready).
    """
    import imaplib
    import os
    import ssl
    from pathlib import Path

    from tests.servers.dovecot import DovecotServer

    def processes(instance: str) -> list[list[int]]:
        """[pid, effective uid, effective gid] of each live process naming the instance."""
        found = []
        for entry in Path("/proc").iterdir():
            try:
                if instance.encode() not in (entry / "cmdline").read_bytes():
                    continue  # zombies have an empty command line
                status = (entry / "status").read_text().splitlines()
            except (OSError, ValueError):
                continue  # not a process, or ended meanwhile
            ids = {line.split(":")[0]: line.split()[2] for line in status if line.startswith(("Uid:", "Gid:"))}
            found.append([int(entry.name), int(ids["Uid"]), int(ids["Gid"])])
        return found

    def fetch_inbox(imap: imaplib.IMAP4) -> str:
        """SELECT INBOX and return its first message."""
        imap.select("INBOX", readonly=True)
        _, data = imap.fetch("1", "(BODY.PEEK[])")
        item = data[0]
        assert isinstance(item, tuple), data
        return item[1].decode()

    reports = []
    for layout in layouts:
        server = DovecotServer(layout=layout)  # type: ignore[arg-type]
        server.start()
        try:
            context = ssl.create_default_context(cafile=str(server.ca_file))
            user = server.add_user("alice", "secret-1")
            folder = f"{server.prefix}Projects{server.separator}2024"
            body = f"Subject: {layout}\r\n\r\nWritten by uid {os.geteuid()}.\r\n"
            sessions: dict[str, Any] = {}
            with imaplib.IMAP4(server.host, server.port) as imap:
                sessions["plain"] = {"login": imap.login(user, "secret-1")[0], "tls": None}
            with imaplib.IMAP4(server.host, server.port) as imap:
                imap.starttls(ssl_context=context)
                sessions["starttls"] = {
                    "login": imap.login(user, "secret-1")[0],
                    "tls": imap.sock.version(),  # type: ignore[attr-defined]
                    "append": imap.append("INBOX", None, None, body.encode())[0],
                    "create": imap.create(folder)[0],
                    "list": [line.decode() for line in imap.list()[1] if isinstance(line, bytes)],
                }
            with imaplib.IMAP4_SSL(server.host, server.ssl_port, ssl_context=context) as imap:
                sessions["implicit_tls"] = {
                    "login": imap.login(user, "secret-1")[0],
                    "tls": imap.sock.version(),  # type: ignore[attr-defined]
                    "read_back": fetch_inbox(imap),
                }
            with imaplib.IMAP4_SSL(server.host, server.ssl_port, ssl_context=context) as imap:
                sessions["master"] = {
                    "login": imap.login(f"{user}*{server.master_user}", server.master_password)[0],
                    "tls": imap.sock.version(),  # type: ignore[attr-defined]
                    "read_back": fetch_inbox(imap),
                }
            running = processes(server.root.name)
        finally:
            server.stop()
        reports.append({
            "layout": layout,
            "instance": server.root.name,
            "euid": os.geteuid(),
            "egid": os.getegid(),
            "folder": folder,
            "appended": body,
            "sessions": sessions,
            "processes": running,
            "left_after_stop": processes(server.root.name),
        })
    return reports


def _refusal() -> dict[str, Any]:
    """Start a server with the current identity, expecting a refusal; report it.

    Returns:
        The error's type and message, and the instance folder (``.`` when none was made).
    """
    from tests.servers.dovecot import DovecotError, DovecotServer

    server = DovecotServer()
    try:
        server.start()
    except DovecotError as error:
        return {"error": type(error).__name__, "message": str(error), "folder": str(server.root)}
    server.stop()
    return {"error": None, "message": "", "folder": str(server.root)}


# --------------------------------------------------------------------------- running the child


@dataclass(frozen=True)
class Identity:
    """Who the child runs as: None for the current user, else (uid, gid) set with setpriv."""

    ids: tuple[int, int] | None
    home: str


#: ``run(identity, function, *args) -> (exit status, parsed JSON or None, stderr)``
RunAs = Callable[..., tuple[int, Any, str]]


def _account() -> pwd.struct_passwd:
    """The unprivileged account, or skip when none can be used."""
    try:
        account = pwd.getpwnam(_ACCOUNT)
    except KeyError:
        pytest.skip(f"running as root and there is no {_ACCOUNT!r} account to run the fixture as")
    if account.pw_uid == 0:
        pytest.skip(f"running as root and {_ACCOUNT!r} has uid 0")
    if shutil.which("setpriv") is None:
        pytest.skip("running as root and setpriv (util-linux) is missing to run the fixture as another user")
    return account


def _command(identity: Identity, python: str, *args: str) -> list[str]:
    """The child's command line: Python, with setpriv in front when another identity is asked."""
    command = [python, "-B", "-E", "-s", *args]
    if identity.ids is None:
        return command
    uid, gid = identity.ids
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *command]


def _pick_python(identity: Identity, folder: Path) -> str:
    """A Python the identity can run that imports ``cryptography`` (the venv's when readable)."""
    candidates = dict.fromkeys(p for p in (sys.executable, "/usr/bin/python3", shutil.which("python3")) if p)
    for python in candidates:
        probe = subprocess.run(
            _command(identity, python, "-c", "import cryptography.x509"),
            cwd=folder,
            env={"PATH": _PATH, "HOME": identity.home},
            capture_output=True,
            timeout=_CHILD_TIMEOUT_SECONDS,
            check=False,
        )
        if probe.returncode == 0:
            return python
    pytest.skip(f"no Python that the child's user can run imports cryptography (tried {', '.join(candidates)})")


@pytest.fixture(scope="module")
def run_as() -> Iterator[RunAs]:
    """Copy the fixture to a world-readable folder; yield a runner of child functions there."""
    missing = dovecot_missing_message()
    if missing:
        pytest.fail(missing, pytrace=False)
    folder = Path(tempfile.mkdtemp(prefix="ms-nonroot-", dir="/tmp"))  # not TMPDIR: may be private
    try:
        folder.chmod(0o755)
        for name in _FIXTURE_FILES:
            target = folder / name
            target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            shutil.copyfile(_REPO / name, target)
            target.chmod(0o644)
        pythons: dict[Identity, str] = {}

        def run(identity: Identity, function: Callable[..., Any], *args: str) -> tuple[int, Any, str]:
            python = pythons.get(identity)
            if python is None:
                python = pythons[identity] = _pick_python(identity, folder)
            script = folder / f"{function.__name__.lstrip('_')}.py"
            script.write_text(
                "from __future__ import annotations  # the annotations name this module's imports\n\n"
                f"{inspect.getsource(function)}\n\n"
                "import json, sys\n"
                f"print(json.dumps({function.__name__}(*sys.argv[1:])))\n"
            )
            script.chmod(0o644)
            done = subprocess.run(
                _command(identity, python, str(script), *args),
                cwd=folder,
                env={"PATH": _PATH, "HOME": identity.home, "LC_ALL": "C.UTF-8"},
                capture_output=True,
                text=True,
                timeout=_CHILD_TIMEOUT_SECONDS,
                check=False,
            )
            report = json.loads(done.stdout) if done.returncode == 0 else None
            return done.returncode, report, done.stderr

        yield run
    finally:
        shutil.rmtree(folder)


@pytest.fixture(scope="module")
def unprivileged() -> Identity:
    """``nobody`` with its own group when the tests run as root; else the current user."""
    if os.geteuid() != 0:
        return Identity(None, os.environ.get("HOME", "/"))
    account = _account()
    return Identity((account.pw_uid, account.pw_gid), account.pw_dir)


def _instance_processes(instance: str) -> list[int]:
    """Pids of live processes naming a Dovecot instance, seen from here (zombies excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and instance.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue  # ended meanwhile
    return found


def _assert_gone(reports: list[dict[str, Any]]) -> None:
    """Check that no process or folder of the child's instances outlived it (killing stragglers)."""
    for report in reports:
        instance = report["instance"]
        left = _instance_processes(instance)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert report["left_after_stop"] == [], f"{instance}: processes left after stop()"
        assert left == [], f"{instance}: processes outlived the child"
        assert not Path("/tmp", instance).exists(), f"{instance}: folder left after stop()"


def _gid(name: str) -> int | None:
    """A group's id, or None when there is no such group."""
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None


def _unused(ids: set[int]) -> int:
    """An id in the high range that no entry uses."""
    return next(n for n in range(60000, 65000) if n not in ids)


# --------------------------------------------------------------------------- tests


def test_fixture_serves_both_layouts_as_an_unprivileged_user(run_as: RunAs, unprivileged: Identity) -> None:
    status, reports, stderr = run_as(unprivileged, _serve, "slash", "dot")
    assert status == 0, stderr
    expected_ids = unprivileged.ids or (os.geteuid(), os.getegid())
    assert [r["layout"] for r in reports] == ["slash", "dot"]
    for report in reports:
        assert (report["euid"], report["egid"]) == expected_ids
        assert expected_ids[0] != 0
        # Every process of the instance ran as the child's user and group: nothing needed root.
        assert report["processes"], "no process of the instance was seen while it ran"
        assert {(uid, gid) for _, uid, gid in report["processes"]} == {expected_ids}
        sessions = report["sessions"]
        assert {way: s["login"] for way, s in sessions.items()} == dict.fromkeys(
            ("plain", "starttls", "implicit_tls", "master"), "OK"
        )
        assert sessions["plain"]["tls"] is None
        for way in ("starttls", "implicit_tls", "master"):
            assert sessions[way]["tls"] in ("TLSv1.2", "TLSv1.3"), way
        assert sessions["starttls"]["append"] == "OK"
        assert sessions["starttls"]["create"] == "OK"
        separator = "/" if report["layout"] == "slash" else "."
        assert any(
            line.endswith(f'"{separator}" {report["folder"]}') or line.endswith(f'"{separator}" "{report["folder"]}"')
            for line in sessions["starttls"]["list"]
        ), sessions["starttls"]["list"]
        assert sessions["implicit_tls"]["read_back"] == report["appended"]
        assert sessions["master"]["read_back"] == report["appended"]
    _assert_gone(reports)


def test_fixture_runs_with_a_group_other_than_the_primary_one(run_as: RunAs) -> None:
    """Dovecot would switch its services to the passwd group of the user; the fixture names ours."""
    if os.geteuid() != 0:
        pytest.skip("only root can start the child with a group other than its own")
    account = _account()
    others = [g for g in _OTHER_GROUPS if _gid(g) not in (None, 0, account.pw_gid)]
    if not others:
        pytest.skip(f"none of the groups {_OTHER_GROUPS} exists besides {_ACCOUNT!r}'s own")
    gid = grp.getgrnam(others[0]).gr_gid
    status, reports, stderr = run_as(Identity((account.pw_uid, gid), account.pw_dir), _serve, "dot")
    assert status == 0, stderr
    (report,) = reports
    assert {(uid, g) for _, uid, g in report["processes"]} == {(account.pw_uid, gid)}
    assert report["sessions"]["master"]["read_back"] == report["appended"]
    _assert_gone(reports)


@pytest.mark.parametrize(
    ("who", "message"),
    [
        ("nameless user", "has no passwd entry"),
        ("nameless group", "has no group entry"),
        ("group 0", "runs with gid 0"),
    ],
)
def test_fixture_refuses_identities_dovecot_cannot_run_as(run_as: RunAs, who: str, message: str) -> None:
    """Before writing anything, and with a DovecotError that says what to change."""
    if os.geteuid() != 0:
        pytest.skip("only root can start the child as another identity")
    account = _account()
    ids = {
        "nameless user": (_unused({p.pw_uid for p in pwd.getpwall()}), account.pw_gid),
        "nameless group": (account.pw_uid, _unused({g.gr_gid for g in grp.getgrall()})),
        "group 0": (account.pw_uid, 0),
    }[who]
    status, report, stderr = run_as(Identity(ids, "/"), _refusal)
    assert status == 0, stderr
    assert report["error"] == "DovecotError"
    assert message in report["message"]
    assert report["folder"] == "."  # no instance folder was made
