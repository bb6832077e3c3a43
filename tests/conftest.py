"""Shared fixtures: real Dovecot and Cyrus servers (see ``tests/servers``), unique users, faulty proxies."""

from __future__ import annotations

import hashlib
import itertools
import secrets
from collections.abc import Callable, Iterator

import pytest

from tests.servers.cyrus import CyrusServer, cyrus_missing_message
from tests.servers.dovecot import DovecotServer, Layout, dovecot_missing_message
from tests.servers.imap_proxy import ImapQuirkProxy
from tests.servers.proxy import FaultProxy

#: ``new_user(server) -> (name, password)``
NewUser = Callable[[DovecotServer | CyrusServer], tuple[str, str]]

#: ``fault_proxy(target_host, target_port) -> FaultProxy`` (stopped after the test)
NewProxy = Callable[[str, int], FaultProxy]

#: ``quirk_proxy(target_host, target_port) -> ImapQuirkProxy`` (stopped after the test)
NewQuirkProxy = Callable[[str, int], ImapQuirkProxy]

_user_numbers = itertools.count(1)


def _run_server(layout: Layout, max_mail_size: int | None = None) -> Iterator[DovecotServer]:
    """Start a server for the whole session; fail (never skip) when Dovecot is missing."""
    missing = dovecot_missing_message()
    if missing:
        pytest.fail(missing, pytrace=False)
    with DovecotServer(layout=layout, max_mail_size=max_mail_size) as server:
        yield server


@pytest.fixture(scope="session")
def dovecot_slash() -> Iterator[DovecotServer]:
    """Dovecot with "/" as separator, no prefix, LAYOUT=fs Maildirs (names may contain ".")."""
    yield from _run_server("slash")


@pytest.fixture(scope="session")
def dovecot_dot() -> Iterator[DovecotServer]:
    """Dovecot with "." as separator, prefix "INBOX.", Courier-style Maildir++."""
    yield from _run_server("dot")


@pytest.fixture(scope="session")
def dovecot_small() -> Iterator[DovecotServer]:
    """A "slash" Dovecot whose APPEND rejects messages over 1 MiB; started on first use."""
    yield from _run_server("slash", max_mail_size=1024 * 1024)


#: The special-use folders of ``dovecot_special``, declared by name and not created.
EXCHANGE_SPECIAL_USE = {"Sent Items": "\\Sent", "Deleted Items": "\\Trash", "Junk Mail": "\\Junk"}


@pytest.fixture(scope="session")
def dovecot_mbox() -> Iterator[DovecotServer]:
    """Dovecot with mbox files, "." as separator, no prefix: a folder holding mail cannot have
    children (\\NoInferiors), "/" is refused in names; started on first use."""
    yield from _run_layout(DovecotServer(layout="mbox"))


@pytest.fixture(scope="session")
def dovecot_slash_dots() -> Iterator[DovecotServer]:
    """Dovecot with "/" as separator over Maildir++ directories, where "." is refused in names;
    started on first use."""
    yield from _run_layout(DovecotServer(layout="slash_dots"))


@pytest.fixture(scope="session")
def dovecot_special() -> Iterator[DovecotServer]:
    """A "slash" Dovecot whose configuration gives \\Sent, \\Trash and \\Junk to "Sent Items",
    "Deleted Items" and "Junk Mail" (:data:`EXCHANGE_SPECIAL_USE`) without creating them."""
    yield from _run_layout(DovecotServer(layout="slash", special_use=EXCHANGE_SPECIAL_USE))


def _run_layout(server: DovecotServer) -> Iterator[DovecotServer]:
    """Run a prepared server for the session; fail (never skip) when Dovecot is missing."""
    missing = dovecot_missing_message()
    if missing:
        pytest.fail(missing, pytrace=False)
    with server:
        yield server


def _run_cyrus(layout: Layout) -> Iterator[CyrusServer]:
    """Start a Cyrus server for the whole session; fail (never skip) when Cyrus is missing."""
    missing = cyrus_missing_message()
    if missing:
        pytest.fail(missing, pytrace=False)
    with CyrusServer(layout=layout) as server:
        yield server


@pytest.fixture(scope="session")
def cyrus() -> Iterator[CyrusServer]:
    """Cyrus IMAP with "." as separator and prefix "INBOX." (unixhierarchysep and altnamespace off)."""
    yield from _run_cyrus("dot")


@pytest.fixture(scope="session")
def cyrus_slash() -> Iterator[CyrusServer]:
    """Cyrus IMAP with "/" as separator and no prefix (unixhierarchysep and altnamespace on)."""
    yield from _run_cyrus("slash")


@pytest.fixture
def new_user(request: pytest.FixtureRequest) -> NewUser:
    """Factory adding a fresh user to a server: ``new_user(server) -> (name, password)``.

    Names (``u<n>-<hash of the test id>``) are unique in the session, so no two tests ever share
    a mailbox, and the log of a server tells which test a user belongs to.
    """
    tag = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:8]

    def make(server: DovecotServer | CyrusServer) -> tuple[str, str]:
        name = f"u{next(_user_numbers)}-{tag}"
        password = secrets.token_hex(8)
        server.add_user(name, password)
        return name, password

    return make


@pytest.fixture
def fault_proxy() -> Iterator[NewProxy]:
    """Factory of :class:`FaultProxy` instances, all stopped when the test ends."""
    proxies: list[FaultProxy] = []

    def make(target_host: str, target_port: int) -> FaultProxy:
        proxy = FaultProxy(target_host, target_port)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.stop()


@pytest.fixture
def quirk_proxy() -> Iterator[NewQuirkProxy]:
    """Factory of :class:`ImapQuirkProxy` instances, all stopped when the test ends."""
    proxies: list[ImapQuirkProxy] = []

    def make(target_host: str, target_port: int) -> ImapQuirkProxy:
        proxy = ImapQuirkProxy(target_host, target_port)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.stop()
