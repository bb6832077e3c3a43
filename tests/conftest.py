"""Shared fixtures: real Dovecot servers (see ``tests/servers``), unique users, faulty proxies."""

from __future__ import annotations

import hashlib
import itertools
import secrets
from collections.abc import Callable, Iterator

import pytest

from tests.servers.dovecot import DovecotServer, Layout, dovecot_missing_message
from tests.servers.proxy import FaultProxy

#: ``new_user(server) -> (name, password)``
NewUser = Callable[[DovecotServer], tuple[str, str]]

#: ``fault_proxy(target_host, target_port) -> FaultProxy`` (stopped after the test)
NewProxy = Callable[[str, int], FaultProxy]

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


@pytest.fixture
def new_user(request: pytest.FixtureRequest) -> NewUser:
    """Factory adding a fresh user to a server: ``new_user(server) -> (name, password)``.

    Names (``u<n>-<hash of the test id>``) are unique in the session, so no two tests ever share
    a mailbox, and the log of a server tells which test a user belongs to.
    """
    tag = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:8]

    def make(server: DovecotServer) -> tuple[str, str]:
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
