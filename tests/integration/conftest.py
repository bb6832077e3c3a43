"""Fixtures of the door tests: a live ``mailshift serve`` whose status mails go to a real SMTP listener.

``service`` and ``smtp`` are module-scoped: each test module gets its own service, instance folder
and listener, started once for the module. A module that needs HTTPS as well overrides
``service_https``; a module that defines a ``service`` or ``smtp`` fixture of its own (a service
without SMTP, a listener per test) overrides these.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers.service import MailshiftService
from tests.servers.smtp import SmtpListener


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpListener]:
    """The SMTP listener that receives the module service's status mails."""
    with SmtpListener() as listener:
        yield listener


@pytest.fixture(scope="module")
def service_https() -> bool:
    """Whether ``service`` also serves HTTPS; a module overrides this fixture to say True."""
    return False


@pytest.fixture(scope="module")
def service(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, smtp: SmtpListener,
            service_https: bool) -> Iterator[MailshiftService]:
    """``mailshift serve`` for the test module, sending status mails from mailshift@contoso.edu to ``smtp``.

    The instance folder is named after the module (``test_psrp.py`` -> ``psrp0/instance``).
    """
    settings = {"SMTP_HOST": smtp.host, "SMTP_PORT": str(smtp.port), "SMTP_SECURITY": "None",
                "SMTP_SENDER": "mailshift@contoso.edu"}
    folder = tmp_path_factory.mktemp(request.path.stem.removeprefix("test_"))
    with MailshiftService(folder / "instance", settings, https=service_https) as running:
        yield running
