"""Message identity and flags: pure functions over what a FETCH returned.

A message's identity is independent of UIDs and of what servers change when they store it, so a
copy is recognised on the target after a crash, a lost state database, a UIDVALIDITY change or
an APPEND answered without APPENDUID. The rule (see :mod:`engine.matching` for how it is used):

- **identity**: a digest of the Message-ID, Date, From, To and Subject fields, each unfolded,
  with runs of blanks made one space, and with raw 8-bit bytes and the ``X``/``?`` that servers
  write in their place left out. Not the INTERNALDATE (servers replace dates in the future) nor
  the size (servers add a trailing line end or turn bare LF into CRLF).
- **size tolerance**: a target copy may be the source's size or two bytes more (a line end
  added at the end).
- **body digest** (:func:`body_digest`): where identities collide (byte-identical duplicates,
  reused or missing Message-IDs) or sizes differ more, the whole messages are compared with
  line ends as LF, trailing blanks ignored, and the header section's 8-bit bytes left out.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from email.header import decode_header, make_header

__all__ = [
    "IDENTITY_HEADERS",
    "SYSTEM_FLAGS",
    "MessageMeta",
    "body_digest",
    "identity_digests",
    "meta_from_fetch",
    "normalize_flags",
    "target_flags",
]

#: Headers fetched for every message to identify it and to describe it in reports.
IDENTITY_HEADERS = ("MESSAGE-ID", "DATE", "FROM", "TO", "SUBJECT")
_IDENTITY_KEYS = tuple(name.lower().encode("ascii") for name in IDENTITY_HEADERS)

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
    #: The alteration-tolerant identity of its header fields (:func:`identity_digests`).
    fingerprint: str
    #: The exact digest of the same fields: differs on a target that rewrote header bytes.
    header_digest: str = ""
    #: Whether those fields hold raw 8-bit bytes (what some targets rewrite).
    eight_bit: bool = False
    #: The Subject and Date header values as received; decoded only for a report (RFC 2047
    #: decoding of every copied message's headers cost a tenth of the engine's CPU).
    raw_subject: bytes | None = None
    raw_date: bytes | None = None
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


def _header_text(value: bytes | None) -> str:
    if not value:
        return ""
    text = " ".join(value.decode("utf-8", "replace").split())
    try:
        return str(make_header(decode_header(text))).strip()
    except (ValueError, LookupError, UnicodeError):
        return text


#: Bytes left out of header values before they identify a message: what servers put in place of
#: raw 8-bit header bytes (Cyrus writes ``X``, others ``?``) and those bytes themselves, so a
#: message whose headers a target rewrote still matches its source.
_UNSTABLE_HEADER_BYTES = bytes(range(0x80, 0x100)) + b"X?"


#: A header field: its name (printable ASCII but the colon), then its value with the lines that
#: continue it (starting with a blank), whatever the line ends.
_FIELD = re.compile(rb"^([!-9;-~]+):([^\n]*(?:\n[ \t][^\n]*)*)", re.MULTILINE)


def _raw_fields(block: bytes) -> dict[bytes, bytes]:
    """The first value of each field of a header block, by lower-cased name, as the server sent
    it (8-bit bytes, bare LF and CR included; folded lines kept with their line ends, which the
    callers fold into single spaces). The block ends at the first empty line."""
    if block[:1] == b"\n" or block[:2] == b"\r\n":
        return {}
    end = len(block)
    for blank in (b"\n\n", b"\n\r\n"):
        found = block.find(blank)
        if 0 <= found < end:
            end = found
    out: dict[bytes, bytes] = {}
    for name, value in _FIELD.findall(block, 0, end):
        out.setdefault(name.lower(), value)
    return out


def identity_digests(headers: bytes) -> tuple[str, str]:
    """The two digests of a message's identifying header fields (:data:`IDENTITY_HEADERS`).

    Returns:
        ``(identity, exact)``: ``identity`` survives what servers do on APPEND (line ends,
        folding, 8-bit header bytes replaced) and is what messages are matched by across
        servers, runs and UIDVALIDITYs; ``exact`` differs when a server rewrote header bytes.
    """
    return _digests(_raw_fields(headers))


def _digests(fields: dict[bytes, bytes]) -> tuple[str, str]:
    exact = b"\n".join(b" ".join(fields.get(name, b"").split()) for name in _IDENTITY_KEYS)
    tolerant = exact.translate(None, _UNSTABLE_HEADER_BYTES)
    if len(tolerant) != len(exact):  # blanks around what was left out are folded again
        tolerant = b"\n".join(b" ".join(line.split()) for line in tolerant.split(b"\n"))
    return hashlib.sha256(tolerant).hexdigest()[:32], hashlib.sha256(exact).hexdigest()[:32]


def body_digest(message: bytes) -> str:
    """A digest of a whole message that survives what servers do on APPEND.

    Line ends are compared as LF, trailing blank space and line ends are ignored, and in the
    header section raw 8-bit bytes and what servers write in their place are left out. Used
    when header identities alone cannot tell messages apart (duplicates, reused or missing
    Message-IDs) or when a stored size differs more than a trailing line end.
    """
    text = message.replace(b"\r\n", b"\n").replace(b"\r", b"\n").rstrip(b" \t\n")
    head, blank, body = text.partition(b"\n\n")
    digest = hashlib.sha256(head.translate(None, _UNSTABLE_HEADER_BYTES))
    digest.update(blank + body)
    return digest.hexdigest()[:32]


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
    fields = _raw_fields(headers or b"")
    identity, exact = _digests(fields)
    return MessageMeta(
        uid=uid,
        size=size,
        internaldate=internaldate,
        flags=normalize_flags(flags),
        fingerprint=identity,
        header_digest=exact,
        eight_bit=not (headers or b"").isascii(),
        raw_subject=fields.get(b"subject"),
        raw_date=fields.get(b"date"),
        modseq=modseq,
    )
