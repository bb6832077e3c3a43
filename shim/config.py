"""The service's settings: defaults, then ``<instance>/mailshift.toml``, then a test mapping, then ``MAILSHIFT_*``.

Secrets never sit in these settings: the target's and the SMTP server's passwords are read
from environment variables whose names the settings give (``TARGET_IMAP_PASSWORD_ENV``,
``SMTP_PASSWORD_ENV``).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine import defaults
from engine.controls import refuse_controls
from engine.errors import ConfigurationError
from engine.imap import DEFAULT_MASTER_SEPARATOR, ImapEndpoint, Security, check_master_separator
from engine.logs import LOG_BACKUP_COUNT, LOG_MAX_BYTES, check_log_settings
from engine.notify import SmtpSettings
from engine.scheduler import TargetSettings, require_per_mailbox_login, require_per_mailbox_maildir
from shim import throttle

__all__ = ["DEFAULTS", "load_config", "smtp_settings", "target_settings"]

#: Every setting with its default; an instance file or the environment may override these names only.
DEFAULTS: dict[str, Any] = {
    "INSTANCE": "instance",
    "HOST": "127.0.0.1",
    "PORT": 5985,
    "HTTPS_PORT": 5986,
    "HTTPS": False,
    "TLS_CERT": None,
    "TLS_KEY": None,
    "ALLOW_REMOTE_HTTP": False,
    "IMPORT_FOLDER": None,
    "TARGET_MAILDIR": None,
    "TARGET_IMAP_HOST": None,
    "TARGET_IMAP_PORT": None,
    "TARGET_IMAP_SECURITY": "Ssl",
    "TARGET_IMAP_USER": None,
    "TARGET_IMAP_AUTHZID": None,
    "TARGET_IMAP_PASSWORD_ENV": "MAILSHIFT_TARGET_PASSWORD",
    "TARGET_ACCEPT_UNTRUSTED_CERTIFICATES": False,
    "SMTP_HOST": None,
    "SMTP_PORT": None,
    "SMTP_SECURITY": "Tls",
    "SMTP_SENDER": None,
    "SMTP_USER": None,
    "SMTP_PASSWORD_ENV": "MAILSHIFT_SMTP_PASSWORD",
    "SMTP_ACCEPT_UNTRUSTED_CERTIFICATES": False,
    "MASTER_USER_SEPARATOR": DEFAULT_MASTER_SEPARATOR,
    "SHELL_IDLE_TIMEOUT": 900.0,
    "MAX_SHELLS_PER_USER": 25,
    "LOGIN_FREE_FAILURES": throttle.LOGIN_FREE_FAILURES,
    "LOGIN_LOCKOUT_MAX_SECONDS": throttle.LOGIN_LOCKOUT_MAX_SECONDS,
    "RUN_SCHEDULER": True,
    "SCHEDULER_POLL_SECONDS": defaults.SCHEDULER_POLL_SECONDS,
    "LOG_LEVEL": "INFO",
    "LOG_FORMAT": "text",
    "LOG_MAX_BYTES": LOG_MAX_BYTES,
    "LOG_BACKUP_COUNT": LOG_BACKUP_COUNT,
}

_PREFIX = "MAILSHIFT_"
_INSTANCE_FILE = "mailshift.toml"


def load_config(test_config: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The settings, layered: defaults < instance file < ``test_config`` < ``MAILSHIFT_*`` environment.

    The instance folder itself comes from ``test_config`` or ``MAILSHIFT_INSTANCE``. Unknown
    names in the file are an error (a typo must not pass silently).
    """
    environ = os.environ if environ is None else environ
    config = dict(DEFAULTS)
    instance = Path((test_config or {}).get("INSTANCE") or environ.get(_PREFIX + "INSTANCE") or config["INSTANCE"])
    path = instance / _INSTANCE_FILE
    if path.is_file():
        with path.open("rb") as handle:
            try:
                from_file = {k.upper(): v for k, v in tomllib.load(handle).items()}
            except tomllib.TOMLDecodeError as exc:
                raise ConfigurationError(f"{path}: {exc}") from exc
        unknown = sorted(set(from_file) - set(DEFAULTS))
        if unknown:
            raise ConfigurationError(f"{path}: unknown settings {', '.join(unknown)}; known: {', '.join(DEFAULTS)}")
        config.update(from_file)
    config.update(test_config or {})
    for name, default in DEFAULTS.items():
        text = environ.get(_PREFIX + name)
        if text is None or name.endswith("_PASSWORD_ENV") and text == "":
            continue
        config[name] = _parse(name, text, default)
    try:
        check_master_separator(str(config["MASTER_USER_SEPARATOR"]))
    except ConfigurationError as exc:
        raise ConfigurationError(f"MASTER_USER_SEPARATOR: {exc}") from None
    config["INSTANCE"] = str(instance)
    if not config["IMPORT_FOLDER"]:
        config["IMPORT_FOLDER"] = str(instance / "import")
    _check_target_templates(config)
    check_log_settings(config)
    return config


def _check_target_templates(config: Mapping[str, Any]) -> None:
    """Refuse a target setting that every mailbox of a batch would share (an IMAP target wins over Maildir)."""
    if config.get("TARGET_IMAP_HOST"):
        if config.get("TARGET_IMAP_USER"):
            require_per_mailbox_login(str(config["TARGET_IMAP_USER"]), config.get("TARGET_IMAP_AUTHZID"),
                                      "TARGET_IMAP_USER and TARGET_IMAP_AUTHZID")
    elif config.get("TARGET_MAILDIR"):
        require_per_mailbox_maildir(str(config["TARGET_MAILDIR"]), "TARGET_MAILDIR")


def _parse(name: str, text: str, default: Any) -> Any:
    if isinstance(default, bool):
        if text.lower() not in ("1", "0", "true", "false", "yes", "no"):
            raise ConfigurationError(f"{_PREFIX}{name}={text!r}: use true or false")
        return text.lower() in ("1", "true", "yes")
    if isinstance(default, int) and not isinstance(default, bool) or name.endswith("_PORT"):
        try:
            return int(text)
        except ValueError:
            raise ConfigurationError(f"{_PREFIX}{name}={text!r}: use a number") from None
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            raise ConfigurationError(f"{_PREFIX}{name}={text!r}: use a number") from None
    return text


def target_settings(config: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> TargetSettings | None:
    """Where migrated mailboxes go: an IMAP server when ``TARGET_IMAP_HOST`` is set, else Maildir (None = default)."""
    environ = os.environ if environ is None else environ
    if config.get("TARGET_IMAP_HOST"):
        if not config.get("TARGET_IMAP_USER"):
            raise ConfigurationError("TARGET_IMAP_HOST needs TARGET_IMAP_USER (e.g. {EmailAddress}*master)")
        password = environ.get(config["TARGET_IMAP_PASSWORD_ENV"] or "")
        if password is None:
            raise ConfigurationError(f"the target's password is read from ${config['TARGET_IMAP_PASSWORD_ENV']}, "
                                     "which is not set")
        for name in ("TARGET_IMAP_HOST", "TARGET_IMAP_USER", "TARGET_IMAP_AUTHZID"):
            refuse_controls(str(config.get(name) or ""), name)
        refuse_controls(password, f"${config['TARGET_IMAP_PASSWORD_ENV']}", allow_tab=True)
        return TargetSettings(imap=ImapEndpoint(
            host=config["TARGET_IMAP_HOST"], user=config["TARGET_IMAP_USER"], password=password,
            port=config.get("TARGET_IMAP_PORT"), security=Security.parse(config["TARGET_IMAP_SECURITY"]),
            authzid=config.get("TARGET_IMAP_AUTHZID"),
            accept_untrusted_certificates=bool(config.get("TARGET_ACCEPT_UNTRUSTED_CERTIFICATES")),
        ))
    if config.get("TARGET_MAILDIR"):
        return TargetSettings(maildir=str(config["TARGET_MAILDIR"]))
    return None


def smtp_settings(config: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> SmtpSettings | None:
    """The SMTP relay for status e-mails, or None when ``SMTP_HOST`` is not set."""
    environ = os.environ if environ is None else environ
    if not config.get("SMTP_HOST"):
        return None
    sender = config.get("SMTP_SENDER") or f"mailshift@{config['SMTP_HOST']}"
    return SmtpSettings(
        host=config["SMTP_HOST"], sender=sender, port=config.get("SMTP_PORT"), security=config["SMTP_SECURITY"],
        user=config.get("SMTP_USER"),
        password=environ.get(config["SMTP_PASSWORD_ENV"] or "") if config.get("SMTP_USER") else None,
        accept_untrusted_certificates=bool(config.get("SMTP_ACCEPT_UNTRUSTED_CERTIFICATES")),
    )
