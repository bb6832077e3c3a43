"""Finding source messages among a target folder's messages by content: pure logic, no IO.

Used wherever the record of what was copied is missing or uncertain:

- a folder pair with no recorded state (first run onto a folder that already holds mail, a lost
  or other state database, a batch created again, another spelling of the source host, a new
  UIDVALIDITY on either side): every source message is looked for before anything is copied;
- messages left pending by an interrupted run (was the APPEND stored before the crash?);
- an APPEND answered without APPENDUID (which target UID did each message get?).

The rule (identities and digests are defined in :mod:`engine.messages`):

1. Source and target messages are grouped by identity.
2. A group with exactly one message on each side pairs them when the target's size is the
   source's or :data:`SIZE_SLACK` more (a line end added at the end).
3. Any other group with messages on both sides (duplicates, reused or missing Message-IDs,
   sizes further apart) is settled by body digests, as multisets: ``n`` byte-identical source
   messages facing ``k`` target copies pair ``min(n, k)`` of them and leave the rest to copy
   (a copy with the same internal date first, so that duplicates keep their own dates).
4. Whatever is not paired is copied.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "DATE_REPLACED",
    "HEADERS_REWRITTEN",
    "LINE_END_ADDED",
    "SIZE_SLACK",
    "Candidate",
    "Digests",
    "alterations",
    "match",
]

#: Bytes a target's copy may exceed its source by and still pair without comparing bodies.
SIZE_SLACK = (0, 2)


@dataclass(frozen=True)
class Candidate:
    """One message on either side, as far as matching needs it."""

    #: The source UID, or the target's reference (a UID, a Maildir key), as text.
    ref: str
    #: The alteration-tolerant identity of its header fields.
    identity: str
    #: The size the server reports (RFC822.SIZE), in bytes.
    size: int
    #: The internal date (epoch seconds), when known: among byte-identical messages, copies
    #: are paired with the source message of the same date first.
    date: int | None = None


#: ``digests(source refs, target refs) -> (source digests, target digests)`` by ref; a message
#: that cannot be read is absent (and so never paired).
Digests = Callable[[list[str], list[str]], tuple[dict[str, str], dict[str, str]]]


def match(sources: Sequence[Candidate], targets: Sequence[Candidate], digests: Digests) -> dict[str, str]:
    """Pair source messages with target messages that are their copies.

    Args:
        sources: The source messages looked for.
        targets: The target messages they may be, none claimed by another source message.
        digests: Reads body digests, called at most once and only for undecided groups.

    Returns:
        Target ref by source ref, for the source messages found; each target ref used once.
    """
    by_source: dict[str, list[Candidate]] = defaultdict(list)
    by_target: dict[str, list[Candidate]] = defaultdict(list)
    for message in sources:
        by_source[message.identity].append(message)
    for message in targets:
        by_target[message.identity].append(message)

    pairs: dict[str, str] = {}
    undecided: list[str] = []
    for identity, group in by_source.items():
        found = by_target.get(identity)
        if not found:
            continue
        if len(group) == 1 and len(found) == 1 and found[0].size - group[0].size in SIZE_SLACK:
            pairs[group[0].ref] = found[0].ref
        else:
            undecided.append(identity)
    if not undecided:
        return pairs

    source_digests, target_digests = digests(
        [m.ref for identity in undecided for m in by_source[identity]],
        [m.ref for identity in undecided for m in by_target[identity]],
    )
    for identity in undecided:
        free: dict[str, list[Candidate]] = defaultdict(list)
        for message in by_target[identity]:
            digest = target_digests.get(message.ref)
            if digest is not None:
                free[digest].append(message)
        for same_date in (True, False):
            for message in by_source[identity]:
                digest = source_digests.get(message.ref)
                if message.ref in pairs or digest is None:
                    continue
                copies = free.get(digest, [])
                copy = next((c for c in copies if not same_date or c.date == message.date), None)
                if copy is not None:
                    copies.remove(copy)
                    pairs[message.ref] = copy.ref
    return pairs


#: What :func:`alterations` calls each change a target made to a message it stored.
LINE_END_ADDED = "line end added at the end"
DATE_REPLACED = "internal date replaced"
HEADERS_REWRITTEN = "header bytes rewritten"


def alterations(
    sent: tuple[int, datetime | None, str],
    stored: tuple[int, datetime | None, str],
    ends_crlf: bool | None = None,
) -> tuple[tuple[str, ...], str]:
    """What a target changed in a message it stored, by comparing what the source has with
    what the target reports.

    Args:
        sent: The source's ``(size, internal date, exact header digest)``.
        stored: The same of the target's copy.
        ends_crlf: Whether the bytes sent end with CRLF, when known (a copy 2 bytes larger of
            a message that already ends so had something else added).

    Returns:
        The kinds of change (empty when the copy is exact as far as sizes, dates and header
        fields tell) and a line with the values compared.
    """
    kinds: list[str] = []
    details: list[str] = []
    grown = stored[0] - sent[0]
    if grown:
        if grown == 2 and not ends_crlf:
            kinds.append(LINE_END_ADDED)
        else:
            kinds.append(f"size changed by {grown:+d} bytes")
        details.append(f"size {sent[0]} -> {stored[0]} bytes")
    if sent[1] is not None and stored[1] is not None and int(sent[1].timestamp()) != int(stored[1].timestamp()):
        kinds.append(DATE_REPLACED)
        details.append(f"internal date {sent[1].isoformat()} -> {stored[1].isoformat()}")
    if sent[2] and stored[2] and sent[2] != stored[2]:
        kinds.append(HEADERS_REWRITTEN)
    return tuple(kinds), "; ".join(details)
