"""Message identity and flags: pure functions over what a FETCH returned.

A fingerprint identifies a message independently of UIDs, so a copy can be recognised after a
UIDVALIDITY change or a crash: the Message-ID with the internal date and the size, or, when a
message has no Message-ID (drafts, some sent items), a hash of its identifying headers instead.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser

__all__ = [
    "IDENTITY_HEADERS",
    "SYSTEM_FLAGS",
    "MessageMeta",
    "fingerprint",
    "meta_from_fetch",
    "normalize_flags",
    "target_flags",
]

#: Headers fetched for every message to identify it and to describe it in reports.
IDENTITY_HEADERS = ("MESSAGE-ID", "DATE", "FROM", "TO", "SUBJECT")

#: System flags a target always accepts; ``\Recent`` is deliberately absent (RFC 3501: it is
#: session state and cannot be stored).
SYSTEM_FLAGS = {
    "\\seen": "\\Seen",
    "\\answered": "\\Answered",
    "\\flagged": "\\Flagged",
    "\\deleted": "\\Deleted",
    "\\draft": "\\Draft",
}


@dataclass(frozen=True)
class MessageMeta:
    """What the engine knows about one source message before copying it."""

    uid: int
    size: int
    internaldate: datetime
    flags: frozenset[str]
    fingerprint: str
    #: The Subject and Date header values as received; decoded only for a skipped-item report
    #: (RFC 2047 decoding of every copied message's headers cost a tenth of the engine's CPU).
    raw_subject: object = None
    raw_date: object = None
    modseq: int | None = None

    @property
    def subject(self) -> str:
        """The decoded Subject, for reports."""
        return _header_text(self.raw_subject)

    @property
    def date(self) -> str:
        """The decoded Date header, for reports."""
        return _header_text(self.raw_date)


def normalize_flags(raw: object) -> frozenset[str]:
    """Flags as text with system flags in canonical case and ``\\Recent`` removed.

    Args:
        raw: An iterable of flags as ``bytes`` or ``str`` (as imapclient returns them).

    Returns:
        The flags to carry to the target.
    """
    out: set[str] = set()
    for flag in raw or ():  # type: ignore[attr-defined]
        text = flag.decode("utf-8", "replace") if isinstance(flag, bytes) else str(flag)
        if text.startswith("\\"):
            canonical = SYSTEM_FLAGS.get(text.lower())
            if canonical:
                out.add(canonical)
            # other backslash flags (\Recent, server-specific ones) are not storable
        elif text:
            out.add(text)
    return frozenset(out)


def target_flags(flags: frozenset[str], keywords_allowed: frozenset[str] | None) -> frozenset[str]:
    """The subset of ``flags`` a target folder will store.

    Args:
        flags: Normalized source flags.
        keywords_allowed: Keywords the target permits, or None when it permits any (``\\*``).
    """
    return frozenset(
        f for f in flags if f.startswith("\\") or keywords_allowed is None or f in keywords_allowed
    )


def _header_text(value: Any) -> str:
    if not value:
        return ""
    try:
        return str(make_header(decode_header(value))).strip()
    except (ValueError, LookupError, UnicodeError):
        return " ".join(value.split())


def fingerprint(message_id: str | None, internaldate: datetime, size: int, header_hash: str) -> str:
    """A stable identity for a message, independent of UIDs.

    Args:
        message_id: The Message-ID header value, or None when absent.
        internaldate: The INTERNALDATE, timezone-aware.
        size: RFC822.SIZE in bytes.
        header_hash: Hash of the identifying headers, used when there is no Message-ID.

    Returns:
        A 32-character hex digest.
    """
    ident = f"m:{message_id.strip()}" if message_id and message_id.strip() else f"h:{header_hash}"
    raw = f"{ident}|{int(internaldate.timestamp())}|{size}"
    return hashlib.sha256(raw.encode("utf-8", "surrogateescape")).hexdigest()[:32]


#: A header line's start as the email package's parser recognises it: a name of printable
#: ASCII characters other than the colon, then the colon.
_FIELD = re.compile(r"[!-9;-~]+:")


def _plain_headers(block: bytes) -> dict[str, str] | None:
    """The first value of each header of a plain header block, as the email package reads it.

    Only for the usual shape: ASCII, CRLF line ends, every line a ``Name: value`` line or its
    continuation. The value is what ``email.parser.BytesHeaderParser`` (compat32) gives: the
    text after the colon without leading blanks, continuation lines kept with their CRLF,
    trailing CR and LF removed. Anything else returns None and the email package reads it.
    """
    if not block.isascii():
        return None
    out: dict[str, str] = {}
    name: str | None = None
    value: list[str] = []
    for line in block.decode("ascii").split("\r\n"):
        if "\r" in line or "\n" in line:
            return None
        if not line or line[0] not in " \t":
            if name is not None and name not in out:
                out[name] = "\r\n".join(value).rstrip("\r\n")
            if not line:
                return out
            field = _FIELD.match(line)
            if field is None:
                return None
            name, value = line[: field.end() - 1].lower(), [line[field.end() :].lstrip(" \t")]
        elif name is None:
            return None
        else:
            value.append(line)
    if name is not None and name not in out:
        out[name] = "\r\n".join(value).rstrip("\r\n")
    return out


def _header_values(block: bytes) -> dict[str, Any]:
    """:data:`IDENTITY_HEADERS` of a header block (None for a header that is absent)."""
    plain = _plain_headers(block)
    if plain is not None:
        return {name: plain.get(name.lower()) for name in IDENTITY_HEADERS}
    # The default policy is compat32; naming it would import email.policy (start-up time).
    parsed = BytesHeaderParser().parsebytes(block)
    return {name: parsed.get(name) for name in IDENTITY_HEADERS}


def meta_from_fetch(
    uid: int, size: int, internaldate: datetime, flags: object, headers: bytes, modseq: int | None
) -> MessageMeta:
    """Build a :class:`MessageMeta` from the pieces of one FETCH response.

    Args:
        uid: The message UID.
        size: RFC822.SIZE.
        internaldate: INTERNALDATE, timezone-aware.
        flags: FLAGS as returned by the server.
        headers: The raw ``BODY[HEADER.FIELDS (...)]`` bytes for :data:`IDENTITY_HEADERS`.
        modseq: MODSEQ when the server reported one.
    """
    values = _header_values(headers or b"")
    header_hash = hashlib.sha256(
        "\n".join(" ".join(str(values[n] or "").split()) for n in IDENTITY_HEADERS[1:]).encode(
            "utf-8", "surrogateescape"
        )
    ).hexdigest()
    message_id = values["MESSAGE-ID"]
    return MessageMeta(
        uid=uid,
        size=size,
        internaldate=internaldate,
        flags=normalize_flags(flags),
        fingerprint=fingerprint(str(message_id) if message_id else None, internaldate, size, header_hash),
        raw_subject=values["SUBJECT"],  # str, or a Header when the bytes are not ASCII
        raw_date=values["DATE"],
        modseq=modseq,
    )
