"""Where the service's log goes: a private rotating file in the instance folder, and standard error.

Lines are text by default, or JSON lines written by python-json-logger: each carries ``time``,
``level``, ``logger`` and ``message``, plus the structured extras its caller gave (``admin``,
``door``, ``cmdlet``, ``batch``, ``email``, ``duration_ms`` ...). The log file and its folder are
private to the service's account like every other instance file (0600/0700), rotated copies too.
"""

from __future__ import annotations

import io
import logging
import sys
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import IO, Any

from pythonjsonlogger.json import JsonFormatter

from engine.errors import ConfigurationError
from engine.private import private_file, private_folder

__all__ = [
    "LOG_BACKUP_COUNT",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "LOG_MAX_BYTES",
    "PrivateRotatingFileHandler",
    "check_log_settings",
    "configure_logging",
    "log_file",
    "make_formatter",
    "quiet_protocol_trace",
]

#: Size in bytes at which the log file is rotated (``LOG_MAX_BYTES``).
LOG_MAX_BYTES = 10 * 1024 * 1024

#: Rotated log files kept beside the current one: mailshift.log.1 ... (``LOG_BACKUP_COUNT``).
LOG_BACKUP_COUNT = 5

#: The line formats ``LOG_FORMAT`` accepts.
LOG_FORMATS = ("text", "json")

#: The levels ``LOG_LEVEL`` accepts, least to most severe.
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_JSON_FIELDS = ("asctime", "levelname", "name", "message")
_JSON_NAMES = {"asctime": "time", "levelname": "level", "name": "logger"}


class PrivateRotatingFileHandler(RotatingFileHandler):
    """A :class:`RotatingFileHandler` whose every file (the first and each one after a rotation) is 0600."""

    def _open(self) -> io.TextIOWrapper:
        private_file(self.baseFilename)
        return super()._open()


def log_file(instance: str | Path) -> Path:
    """The service's log file in an instance folder."""
    return Path(instance) / "logs" / "mailshift.log"


def check_log_settings(config: dict[str, Any]) -> None:
    """Refuse a ``LOG_*`` setting the logging set-up cannot use.

    Raises:
        ConfigurationError: An unknown format or level, or a size or count below its minimum.
    """
    if str(config["LOG_FORMAT"]).lower() not in LOG_FORMATS:
        raise ConfigurationError(f"LOG_FORMAT={config['LOG_FORMAT']!r}: use {' or '.join(LOG_FORMATS)}")
    if str(config["LOG_LEVEL"]).upper() not in LOG_LEVELS:
        raise ConfigurationError(f"LOG_LEVEL={config['LOG_LEVEL']!r}: use one of {', '.join(LOG_LEVELS)}")
    if not isinstance(config["LOG_MAX_BYTES"], int) or config["LOG_MAX_BYTES"] < 1024:
        raise ConfigurationError(f"LOG_MAX_BYTES={config['LOG_MAX_BYTES']!r}: use a number of bytes, 1024 or more")
    if not isinstance(config["LOG_BACKUP_COUNT"], int) or config["LOG_BACKUP_COUNT"] < 1:
        raise ConfigurationError(f"LOG_BACKUP_COUNT={config['LOG_BACKUP_COUNT']!r}: use a number, 1 or more")


def make_formatter(line_format: str) -> logging.Formatter:
    """The formatter for ``text`` or ``json`` lines."""
    if line_format.lower() == "json":
        return JsonFormatter(list(_JSON_FIELDS), rename_fields=dict(_JSON_NAMES), json_ensure_ascii=False)
    return logging.Formatter(_TEXT_FORMAT)


def quiet_protocol_trace() -> None:
    """Keep imapclient's protocol trace out of every log, whatever the level.

    At debug level it would write each IMAP command as sent, an ``AUTHENTICATE`` exchange (which
    carries the password in base64) among them, and format every message body it fetched.
    """
    logging.getLogger("imapclient").setLevel(logging.INFO)


def configure_logging(instance: str | Path, *, level: str = "INFO", line_format: str = "text",
                      max_bytes: int = LOG_MAX_BYTES, backup_count: int = LOG_BACKUP_COUNT,
                      stream: IO[str] | None = None) -> Path:
    """Send every log record to ``<instance>/logs/mailshift.log`` (rotated) and to standard error.

    Replaces the handlers the root logger had (a command's early stderr-only set-up).

    Args:
        instance: The instance folder.
        level: The least severe level written (``LOG_LEVEL``).
        line_format: ``text`` or ``json`` (``LOG_FORMAT``).
        max_bytes: Rotate the file when it would grow past this size (``LOG_MAX_BYTES``).
        backup_count: Rotated files kept (``LOG_BACKUP_COUNT``).
        stream: Where the second copy goes (standard error when None).

    Returns:
        The log file's path.
    """
    path = log_file(instance)
    private_folder(path.parent)
    formatter = make_formatter(line_format)
    to_file = PrivateRotatingFileHandler(path, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8")
    to_stderr = logging.StreamHandler(stream if stream is not None else sys.stderr)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    for handler in (to_file, to_stderr):
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(level.upper())
    quiet_protocol_trace()
    return path
