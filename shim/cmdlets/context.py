"""What a cmdlet runs with: the engine service and who asked."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.service import MigrationService

__all__ = ["Context"]


@dataclass
class Context:
    """One invocation's surroundings: the engine, the administrator, and the warnings written."""

    service: MigrationService
    #: The administrator's account name (for logs).
    user: str = "admin"
    #: The administrator's e-mail address: 2010-style status e-mails go to it by default.
    user_email: str | None = None
    warnings: list[str] = field(default_factory=list)

    def warn(self, text: str) -> None:
        """Write a warning (printed as ``WARNING: text``)."""
        self.warnings.append(text)
