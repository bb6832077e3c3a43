"""Folder planning: which source folders to copy, where each one lands, what to create.

Pure logic over plain data, with no IO. The sync LISTs both servers, reads their personal
NAMESPACE and the source's subscriptions (LSUB), then :func:`plan_mailbox` answers with a
:class:`MailboxPlan`; :mod:`engine.provision` creates its folders, asking :func:`legal_names`
for the next name to try when the target refuses one, and mirrors the subscriptions with
:func:`subscription_changes`. Names are Unicode throughout; modified UTF-7 is the IMAP layer's
business.

The folder tree is kept: two source folders never land in one target folder. How a source
folder becomes a target folder:

1. **Logical path.** The personal prefix is removed and the rest is split on the folder's
   delimiter: ``INBOX.Archive.2020`` on a Courier-style server and ``Archive/2020`` on a
   Dovecot-style one are both ``("Archive", "2020")``. The folder named ``INBOX`` (in any case)
   is the inbox, ``("INBOX",)``; a folder below it on a server without a prefix keeps it as its
   first component (``INBOX/Sub`` is ``("INBOX", "Sub")``). Folders outside the personal
   namespace are skipped. With a UserRoot, the UserRoot folder becomes the inbox and its
   children become top-level folders.
2. **Role.** The inbox is :attr:`Role.INBOX`; otherwise RFC 6154 SPECIAL-USE (or Gmail's older
   XLIST) attributes decide, and failing those a top-level folder whose name is in
   :data:`ROLE_NAMES` (English and common localized names). ExcludeFolders tokens
   (``#SentItems#``) find every source folder of their role.
3. **Special folders.** Of the source folders of one role, only one is the role's folder: the
   one carrying the attribute (the first in path order when several do), else the one whose
   name comes first in :data:`ROLE_NAMES`. It lands in the target folder carrying that role's
   attribute when the target lists one. When none does, it keeps its own name (never renamed
   to a usual name such as "Trash", never moved onto a target folder that only has a role's
   name) and is created with its attribute (:data:`SPECIAL_USE_ATTRIBUTES`, as
   CREATE-SPECIAL-USE's ``USE``) where the target offers CREATE-SPECIAL-USE; a target that
   gives the attribute by configuration to that name (Dovecot's ``mailbox "Deleted Items"
   { special_use = \\Trash }``) gives it to the copy. The other folders of the role keep their
   own names and are ordinary folders (:attr:`FolderPlan.role` is None). Plans are stable: a
   folder created with its attribute is found by that attribute on the next run.
4. **Target path.** Any other folder keeps its path below its nearest mapped ancestor ("Sent
   Items/2019" becomes "Sent/2019" when "Sent Items" landed in the target's "Sent"). The
   target name is the target prefix plus the path joined with the target delimiter;
   ``("INBOX",)`` is always ``INBOX``, while a path below the inbox is joined like any other,
   so ``("INBOX", "Sub")`` becomes ``INBOX.INBOX.Sub`` on a target whose prefix is ``INBOX.``:
   the path stays lossless and distinct from a top-level ``Sub`` (``INBOX.Sub``).
5. **Names that cannot be kept.** A path component containing the target's delimiter would
   become two levels, so that character is replaced with :data:`SEPARATOR_REPLACEMENT`. When two
   source folders still end at one target name (after such a replacement, because the target
   treats ``INBOX`` case-insensitively, or because an ordinary folder has the name of the
   target's special-use folder another folder lands in), the later one in path order gets a
   numeric suffix (:data:`DISAMBIGUATION_FORMAT`); a folder landing in the target's special-use
   folder is never the one renamed, and the target's INBOX is always taken. Both changes are
   explained in :attr:`FolderPlan.note`; no folder is ever dropped.
6. **Names the target refuses.** When the target refuses a CREATE, :func:`legal_names` gives
   the names to try next, by one rule of two steps, each applied to the result of the one
   before: (1) in the levels that do not exist yet, the characters commonly refused in a name
   (:data:`REFUSED_CHARACTERS`: the other usual delimiter ``.`` or ``/``, ``\\ % * "``, and
   control characters) become ``_``; (2) where the target's folders cannot have children (the
   nearest existing ancestor is listed ``\\NoInferiors``, or CREATE answered ``[CANNOT]`` or
   spoke of inferior mailboxes), the levels from that ancestor down are joined with ``_`` into
   one sibling of it: ``Parent/Child`` becomes ``Parent_Child``, ``A/B/C`` below an existing
   childless ``A/B`` becomes ``A/B_C``. A name another source folder lands in gets the numeric
   suffix. The chosen name is noted in :attr:`FolderPlan.note` and kept in the saved plan, so
   later runs use it; the folder's children follow it. A folder whose every name is refused is
   a folder error (the mailbox ends SyncedWithErrors, every other folder copied); its children
   are tried on their own.
7. **\\Noselect parents.** A ``\\Noselect`` source folder (or a parent the source does not
   list) is not created on its own: its children are created by their full names and the
   server makes the hierarchy (RFC 3501 CREATE). :attr:`MailboxPlan.create` holds the targets
   of copied folders only. Only where a server refuses a child because its parent is missing
   is the parent created then, as hierarchy: it is never subscribed.
8. **Subscriptions.** The target's subscription of every copied folder, the inbox included, is
   made equal to the source's: subscribed where the source subscribes the folder, unsubscribed
   where it does not (also when the target subscribed it by itself). CREATE never subscribes,
   and target folders the mailbox does not copy keep their subscriptions. The source's
   subscriptions are part of :func:`listing_digest`, so a change in them plans again and is
   carried by the next run.

Target names are assigned for the whole source tree before ExcludeFolders and ``\\Noselect``
are applied, so excluding a folder never renames another one. Collisions are only looked for
between source folders: landing in a folder that already exists on the target is how a
re-run finds its own earlier work, so it is never a collision.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import TypeAlias

from engine.errors import ConfigurationError

__all__ = [
    "DISAMBIGUATION_FORMAT",
    "INBOX",
    "REFUSED_CHARACTERS",
    "ROLE_NAMES",
    "SEPARATOR_REPLACEMENT",
    "SPECIAL_USE_ATTRIBUTES",
    "ExcludeFilter",
    "ExcludePattern",
    "FolderPlan",
    "InvalidExcludePattern",
    "MailboxPlan",
    "Namespace",
    "RemoteFolder",
    "Role",
    "SkipReason",
    "UserRootNotFound",
    "legal_names",
    "listing_digest",
    "parse_excludes",
    "plan_mailbox",
    "refused_for_missing_parent",
    "refused_for_nesting",
    "subscription_changes",
    "target_name",
    "target_path",
]

_Path: TypeAlias = tuple[str, ...]

#: The inbox's name, which IMAP compares case-insensitively (RFC 3501 §5.1).
INBOX = "INBOX"

#: Put in place of the target's hierarchy delimiter when a source folder name contains it, of
#: a refused character (:data:`REFUSED_CHARACTERS`), and between the levels of a folder joined
#: into one because the target's folders cannot have children.
SEPARATOR_REPLACEMENT = "_"

#: Characters commonly refused in one level of a folder name: the two usual hierarchy
#: delimiters, IMAP's wildcards, quote and backslash; control characters are refused too.
REFUSED_CHARACTERS = frozenset('./\\%*"')

#: How the later of two source folders that would share a target name is renamed; ``n`` >= 2.
DISAMBIGUATION_FORMAT = "{name} ({n})"

#: Joins path components on a target that has no hierarchy (NIL delimiter).
_FLAT_JOIN = "/"


class Role(StrEnum):
    """A well-known folder; values are Exchange's names, as in ``#SentItems#`` tokens."""

    INBOX = "Inbox"
    SENT = "SentItems"
    TRASH = "DeletedItems"
    JUNK = "JunkEmail"
    DRAFTS = "Drafts"
    ARCHIVE = "Archive"
    ALL = "AllItems"
    FLAGGED = "Flagged"
    OUTBOX = "Outbox"
    CALENDAR = "Calendar"
    CONTACTS = "Contacts"
    TASKS = "Tasks"
    NOTES = "Notes"
    JOURNAL = "Journal"


class SkipReason(StrEnum):
    """Why a listed source folder is neither copied nor excluded by a pattern."""

    NOSELECT = "not selectable (\\Noselect)"
    NONEXISTENT = "does not exist (\\NonExistent)"
    OUTSIDE_NAMESPACE = "outside the personal namespace"
    OUTSIDE_USER_ROOT = "outside UserRoot"


#: The RFC 6154 attribute a role's folder is created with (CREATE-SPECIAL-USE) when it keeps
#: its own name on a target that has no folder of that role.
SPECIAL_USE_ATTRIBUTES: Mapping[Role, str] = MappingProxyType(
    {
        Role.SENT: "\\Sent",
        Role.TRASH: "\\Trash",
        Role.JUNK: "\\Junk",
        Role.DRAFTS: "\\Drafts",
        Role.ARCHIVE: "\\Archive",
        Role.ALL: "\\All",
        Role.FLAGGED: "\\Flagged",
    }
)

#: Top-level folder names that reveal a role when no attribute does, compared caselessly, in
#: order of preference when a target has several (English, then de, fr, es, it, nl, pt, sv,
#: da, no).
ROLE_NAMES: Mapping[Role, tuple[str, ...]] = MappingProxyType(
    {
        Role.SENT: (
            "Sent", "Sent Items", "Sent Messages", "Sent Mail", "Sent Email",
            "Gesendet", "Gesendete Objekte", "Gesendete Elemente", "Gesendete Nachrichten",
            "Éléments envoyés", "Objets envoyés", "Messages envoyés", "Envoyés",
            "Enviados", "Elementos enviados", "Mensajes enviados",
            "Posta inviata", "Inviati", "Elementi inviati", "Messaggi inviati",
            "Verzonden items", "Verzonden", "Verzonden berichten",
            "Itens enviados", "Enviadas", "Mensagens enviadas",
            "Skickat", "Skickade objekt", "Skickade meddelanden",
            "Sendt", "Sendte elementer", "Sendt post",
        ),
        Role.TRASH: (
            "Trash", "Deleted Items", "Deleted Messages", "Deleted", "Bin",
            "Papierkorb", "Gelöschte Elemente", "Gelöschte Objekte",
            "Corbeille", "Éléments supprimés", "Messages supprimés",
            "Papelera", "Elementos eliminados",
            "Cestino", "Posta eliminata", "Elementi eliminati",
            "Prullenbak", "Verwijderde items",
            "Lixeira", "Lixo", "Itens excluídos", "Itens eliminados",
            "Papperskorgen", "Borttaget", "Borttagna objekt",
            "Papirkurv", "Slettet post", "Slettede elementer",
        ),
        Role.JUNK: (
            "Junk", "Junk Mail", "Junk E-mail", "Junk Email", "Spam", "Bulk Mail",
            "Junk-E-Mail",
            "Courrier indésirable", "Indésirables", "Pourriel",
            "Correo no deseado", "Correo basura",
            "Posta indesiderata",
            "Ongewenste e-mail", "Ongewenst",
            "Lixo eletrônico", "Lixo electrónico",
            "Skräppost",
            "Uønsket e-mail", "Søppelpost",
        ),
        Role.DRAFTS: (
            "Drafts", "Draft",
            "Entwürfe",
            "Brouillons",
            "Borradores",
            "Bozze",
            "Concepten",
            "Rascunhos",
            "Utkast",
            "Kladder", "Kladd",
        ),
        Role.ARCHIVE: (
            "Archive", "Archives",
            "Archiv",
            "Archivo",
            "Archivio",
            "Archief",
            "Arquivo",
            "Arkiv",
        ),
        Role.OUTBOX: (
            "Outbox",
            "Postausgang",
            "Boîte d'envoi",
            "Bandeja de salida",
            "Posta in uscita",
            "Postvak UIT",
            "Caixa de saída",
            "Utkorgen",
            "Udbakke", "Utboks",
        ),
        Role.CALENDAR: ("Calendar", "Kalender", "Calendrier", "Calendario", "Calendário"),
        Role.CONTACTS: (
            "Contacts", "Kontakte", "Contactos", "Contatti", "Contactpersonen", "Contatos",
            "Kontakter",
        ),
        Role.TASKS: (
            "Tasks", "Aufgaben", "Tâches", "Tareas", "Attività", "Taken", "Tarefas",
            "Uppgifter", "Opgaver", "Oppgaver",
        ),
        Role.NOTES: (
            "Notes", "Notizen", "Notas", "Note", "Notities", "Anteckningar", "Noter",
            "Notater",
        ),
        Role.JOURNAL: ("Journal", "Diario", "Diário", "Dagbok"),
    }
)

# RFC 6154 attributes, then Gmail's XLIST spellings; the first one a folder carries wins.
_ATTRIBUTE_ROLES: tuple[tuple[str, Role], ...] = tuple(
    (attribute.casefold(), role)
    for attribute, role in (
        ("\\Sent", Role.SENT),
        ("\\Trash", Role.TRASH),
        ("\\Junk", Role.JUNK),
        ("\\Drafts", Role.DRAFTS),
        ("\\Archive", Role.ARCHIVE),
        ("\\All", Role.ALL),
        ("\\Flagged", Role.FLAGGED),
        ("\\Spam", Role.JUNK),
        ("\\AllMail", Role.ALL),
        ("\\Starred", Role.FLAGGED),
    )
)
_NOSELECT = "\\noselect"
_NONEXISTENT = "\\nonexistent"
_NOINFERIORS = "\\noinferiors"

# ExcludeFolders: "#Root#" plus one token per role, matched caselessly.
_ROOT_TOKEN = "root"
_TOKENS: Mapping[str, Role] = MappingProxyType({role.value.casefold(): role for role in Role})
_ESCAPABLE = frozenset("#*%\\")
_WILDCARDS = frozenset("*%")
_PATH_SEPARATOR = "/"
_STAR_SEPARATORS = frozenset({("/", False), (".", False)})  # unescaped characters before "*"


def _fold(text: str) -> str:
    """Caseless form of a name (Unicode canonical caseless match), for comparisons only."""
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", text).casefold())


# Caseless name -> (role, rank of the name in that role's list).
_NAME_ROLES: Mapping[str, tuple[Role, int]] = MappingProxyType(
    {_fold(name): (role, rank) for role, names in ROLE_NAMES.items() for rank, name in enumerate(names)}
)


class InvalidExcludePattern(ConfigurationError):
    """Raised when an ExcludeFolders pattern cannot be understood; names the pattern."""

    def __init__(self, pattern: str, reason: str) -> None:
        super().__init__(f"invalid ExcludeFolders pattern {pattern!r}: {reason}")
        self.pattern = pattern


class UserRootNotFound(ConfigurationError):
    """Raised when no source folder lies at or below a mailbox's UserRoot."""

    def __init__(self, user_root: str) -> None:
        super().__init__(
            f"UserRoot {user_root!r} matches no folder on the source; give the path of the "
            "user's folder relative to the personal namespace, written with '/' or with the "
            "source's own hierarchy delimiter (e.g. '/users/terry.adams')"
        )
        self.user_root = user_root


@dataclass(frozen=True)
class RemoteFolder:
    """One folder as LIST reported it."""

    #: Full name as listed, decoded to Unicode.
    name: str
    #: Hierarchy delimiter listed with the name; None when the name has no hierarchy.
    delimiter: str | None
    #: Attributes such as ``\\Noselect`` or ``\\Sent``, compared case-insensitively.
    flags: frozenset[str]


@dataclass(frozen=True)
class Namespace:
    """The personal namespace a server announced."""

    #: Prefix of personal folder names: ``""``, or ``"INBOX."`` on Courier-style servers.
    prefix: str
    #: Hierarchy delimiter, ``"/"`` or ``"."``; None for a server without hierarchy.
    delimiter: str | None


@dataclass(frozen=True)
class FolderPlan:
    """One source folder to copy and where its messages go."""

    #: Source full name, the one to SELECT.
    source: str
    #: Path relative to the root (prefix and UserRoot removed); ``("INBOX",)`` for the inbox.
    path: tuple[str, ...]
    #: The well-known role the folder carries onto the target: the inbox's, or the one of the
    #: role's folder (see the module docstring); None for the others of a role and for
    #: children of a role folder.
    role: Role | None
    #: Target full name, the one to APPEND into.
    target: str
    #: Why the target name differs from the source name beyond mapping, else None.
    note: str | None


@dataclass(frozen=True)
class MailboxPlan:
    """Everything the sync needs to know about one mailbox's folders."""

    #: Selectable source folders to copy, inbox first, parents before children.
    folders: list[FolderPlan]
    #: Target folders of copied folders to CREATE, parents first; parents needed only as
    #: hierarchy are not in it (the server makes them).
    create: list[str]
    #: ``(source name, pattern)`` for folders an ExcludeFolders pattern removed.
    excluded: list[tuple[str, str]]
    #: ``(source name, reason)`` for folders left out for any other reason.
    skipped: list[tuple[str, SkipReason]]
    #: Special-use attribute to CREATE a folder of :attr:`create` with, by target name.
    special_use: dict[str, str] = field(default_factory=dict)
    #: ``(source name, error)`` for folders that could not be created on the target; they are
    #: not in :attr:`folders`, and a plan with any is made again by the next run.
    failed: list[tuple[str, str]] = field(default_factory=list)

    def to_json(self, listing: str) -> str:
        """This plan as text for the state database, tagged with the ``listing`` it was made from."""
        return json.dumps({
            "listing": listing,
            "folders": [[f.source, list(f.path), f.role.value if f.role else None, f.target, f.note] for f in self.folders],
            "excluded": [list(pair) for pair in self.excluded],
            "skipped": [[name, reason.value] for name, reason in self.skipped],
            "failed": [list(pair) for pair in self.failed],
        }, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str, listing: str | None = None) -> MailboxPlan | None:
        """The plan :meth:`to_json` stored, if it was made from the same ``listing``.

        A plan with folders that could not be created is not given back for a ``listing``
        (the next run plans again and tries them); with ``listing`` None any stored plan is
        given back, e.g. to keep the names chosen for refused folders. Nothing is created by a
        plan read back (its folders were created when it was made).
        """
        try:
            data = json.loads(text)
            failed = [(name, error) for name, error in data.get("failed", [])]
            if listing is not None and (data.get("listing") != listing or failed):
                return None
            return cls(
                folders=[FolderPlan(source, tuple(path), Role(role) if role else None, target, note)
                         for source, path, role, target, note in data["folders"]],
                create=[],
                excluded=[(name, pattern) for name, pattern in data["excluded"]],
                skipped=[(name, SkipReason(reason)) for name, reason in data["skipped"]],
                failed=failed,
            )
        except (ValueError, KeyError, TypeError):
            return None  # written by another version: plan again


#: LIST attributes that say something about a folder's messages, not about its place in the
#: plan (RFC 3501/5258); a change in them alone does not call for planning again.
_VOLATILE_ATTRIBUTES = frozenset({"\\marked", "\\unmarked", "\\haschildren", "\\hasnochildren"})


def listing_digest(
    folders: Sequence[RemoteFolder],
    namespace: Namespace,
    *,
    exclude: Sequence[str] = (),
    user_root: str | None = None,
    subscribed: Iterable[str] = (),
) -> str:
    """A digest of everything a plan is made from on the source, and the options.

    Equal digests mean the source's folders, the namespace, the source's subscriptions and the
    options are as they were when a plan was made, so that plan (and the subscriptions it
    applied) still holds as far as the source is concerned.
    """
    listed = sorted(
        (f.name, f.delimiter or "", sorted(a.lower() for a in f.flags if a.lower() not in _VOLATILE_ATTRIBUTES))
        for f in folders
    )
    text = json.dumps(
        [listed, [namespace.prefix, namespace.delimiter], list(exclude), user_root, sorted(set(subscribed))],
        ensure_ascii=False,
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ExcludePattern:
    """One parsed ExcludeFolders entry."""

    #: The pattern as written, reported with every folder it excludes.
    text: str
    #: Well-known folder the pattern starts from (``#SentItems#``); None for the root.
    anchor: Role | None
    #: Path below the anchor with escapes resolved; ``""`` for the anchor itself.
    relative: str
    #: ``"/"`` (or ``"."``) when the pattern ends in ``/*``: the folder and all below it.
    recursive_separator: str | None

    @property
    def recursive(self) -> bool:
        """True when the pattern also excludes every folder below the one it names."""
        return self.recursive_separator is not None


@dataclass(frozen=True)
class ExcludeFilter:
    """A validated ExcludeFolders list, in the order given (the first match is reported)."""

    patterns: tuple[ExcludePattern, ...]


def parse_excludes(patterns: Sequence[str]) -> ExcludeFilter:
    """Parse ExcludeFolders patterns (Exchange syntax) without needing a server.

    Patterns are paths relative to the mailbox root, written with ``/`` (the source's own
    delimiter and its personal prefix are also understood when the plan is made), compared
    case-insensitively. ``Name`` excludes that folder only (its children are still copied);
    ``Name/*`` excludes it and everything below it (``Name.*`` too where the source's delimiter
    is ``.``). A leading ``#Token#`` starts at a well-known folder whatever its name
    (``#SentItems#``, ``#DeletedItems#``, ``#JunkEmail#``, ``#Inbox#``, ..., one per
    :class:`Role` value, plus ``#Root#`` for the root, so ``#Root#/*`` is everything) and may be
    followed by ``/*`` or by a path below it. ``\\#``, ``\\*``, ``\\%`` and ``\\\\`` stand for
    the character itself (a folder named ``#Notes#`` is ``\\#Notes\\#``); any other
    backslash is literal, and so is a ``#`` that does not start the pattern.

    Args:
        patterns: The ExcludeFolders values, as the administrator wrote them.

    Returns:
        The parsed filter, to check patterns early; :func:`plan_mailbox` parses its own.

    Raises:
        InvalidExcludePattern: A pattern is empty or names no folder (``/*``, ``#Root#``),
            uses an unknown ``#Token#``, leaves a ``#`` unclosed or follows one with anything
            but ``/``, has an empty path component, or uses ``*`` or ``%`` anywhere but as a
            final ``/*``.
    """
    return ExcludeFilter(tuple(_parse_pattern(text) for text in patterns))


def _parse_pattern(text: str) -> ExcludePattern:
    """Parse one ExcludeFolders pattern; see :func:`parse_excludes`."""
    if not text.strip():
        raise InvalidExcludePattern(text, "it is empty")
    chars: list[tuple[str, bool]] = []  # (character, was escaped)
    index = 0
    while index < len(text):
        if text[index] == "\\" and text[index + 1 : index + 2] in _ESCAPABLE:
            chars.append((text[index + 1], True))
            index += 2
        else:
            chars.append((text[index], False))
            index += 1

    anchor: Role | None = None
    anchored = chars[0] == ("#", False)
    if anchored:
        end = next((i for i in range(1, len(chars)) if chars[i] == ("#", False)), None)
        if end is None:
            raise InvalidExcludePattern(
                text, "'#' opens a well-known folder token that is never closed; write '\\#' "
                "for a literal '#'"
            )
        token = "".join(char for char, _ in chars[1:end])
        if token.casefold() != _ROOT_TOKEN:
            if token.casefold() not in _TOKENS:
                known = ", ".join(f"#{name}#" for name in ("Root", *(role.value for role in Role)))
                raise InvalidExcludePattern(
                    text, f"unknown well-known folder #{token}#; known tokens are {known}"
                )
            anchor = _TOKENS[token.casefold()]
        chars = chars[end + 1 :]

    recursive_separator: str | None = None
    if chars[-1:] == [("*", False)] and len(chars) >= 2 and chars[-2] in _STAR_SEPARATORS:
        recursive_separator = chars[-2][0]
        chars = chars[:-2]
    if any(char in _WILDCARDS and not escaped for char, escaped in chars):
        raise InvalidExcludePattern(
            text, "wildcards are not allowed except a final '/*'; write '\\*' or '\\%' for a "
            "literal character"
        )

    rest = "".join(char for char, _ in chars)
    if anchored:
        if rest and not rest.startswith(_PATH_SEPARATOR):
            raise InvalidExcludePattern(text, "a '#Token#' must be followed by '/'")
        if not rest and anchor is None and recursive_separator is None:
            raise InvalidExcludePattern(text, "#Root# alone names no folder; '#Root#/*' is everything")
    elif not rest.removeprefix(_PATH_SEPARATOR):
        raise InvalidExcludePattern(text, "it names no folder; '#Root#/*' is everything")
    relative = rest.removeprefix(_PATH_SEPARATOR)
    if (rest or not anchored) and "" in relative.split(_PATH_SEPARATOR):
        raise InvalidExcludePattern(text, "it has an empty folder name between separators")
    return ExcludePattern(text, anchor, relative, recursive_separator)


@dataclass(frozen=True)
class _Rule:
    """An exclude pattern resolved against one source mailbox: caseless base paths."""

    text: str
    bases: tuple[_Path, ...]
    recursive: bool

    def matches(self, folded_path: _Path) -> bool:
        """True when the rule excludes the folder at this caseless path."""
        return any(
            folded_path == base or (self.recursive and folded_path[: len(base)] == base)
            for base in self.bases
        )


def _canonical_inbox(name: str, delimiter: str | None) -> str:
    """Spell a leading INBOX component in capitals, as servers compare it caselessly."""
    head = name[: len(INBOX)]
    if head.casefold() == INBOX.casefold() and (
        len(name) == len(INBOX) or (delimiter is not None and name[len(INBOX) :].startswith(delimiter))
    ):
        return INBOX + name[len(INBOX) :]
    return name


def _logical_path(name: str, delimiter: str | None, namespace: Namespace) -> _Path | None:
    """Path of a listed folder below the personal namespace; None when outside it."""
    name = _canonical_inbox(name, delimiter)
    if name == INBOX:
        return (INBOX,)
    prefix = _canonical_inbox(namespace.prefix, namespace.delimiter)
    if len(name) <= len(prefix) or not name.startswith(prefix):
        return None
    rest = name[len(prefix) :]
    return tuple(rest.split(delimiter)) if delimiter else (rest,)


def _prefix_path(namespace: Namespace) -> _Path:
    """The personal prefix as path components (``"INBOX."`` is ``("INBOX",)``)."""
    prefix = _canonical_inbox(namespace.prefix, namespace.delimiter)
    if namespace.delimiter:
        prefix = prefix.removesuffix(namespace.delimiter)
        return tuple(prefix.split(namespace.delimiter)) if prefix else ()
    return (prefix,) if prefix else ()


def _spellings(text: str, delimiter: str | None, prefix: _Path) -> list[_Path]:
    """Paths a user-written folder path may mean, most literal first.

    The text may separate levels with the source's delimiter or with ``/`` and may start with
    the personal prefix; a component is never split on ``/`` when the delimiter alone already
    gives a reading, so ``A/B`` on a ``.`` server means both ``("A/B",)`` and ``("A", "B")``.
    """
    by_delimiter = tuple(text.split(delimiter)) if delimiter else (text,)
    by_both = tuple(
        part
        for piece in text.split(_PATH_SEPARATOR)
        for part in (piece.split(delimiter) if delimiter else (piece,))
    )
    readings: list[_Path] = []
    for split in (by_delimiter, by_both):
        reading = (_canonical_inbox(split[0], None), *split[1:])
        candidates = [reading]
        if prefix and len(reading) > len(prefix) and reading[: len(prefix)] == prefix:
            candidates.append(reading[len(prefix) :])
        for candidate in candidates:
            if candidate not in readings:
                readings.append(candidate)
    return readings


def _path_key(path: _Path) -> tuple[bool, _Path, _Path]:
    """Sort key: the inbox and its children first, then caseless, then exact order."""
    return (path[:1] != (INBOX,), tuple(_fold(part) for part in path), path)


def _attribute_role(flags: frozenset[str]) -> Role | None:
    """Role given by a SPECIAL-USE or XLIST attribute; ``flags`` are casefolded."""
    return next((role for attribute, role in _ATTRIBUTE_ROLES if attribute in flags), None)


def _name_role(path: _Path) -> tuple[Role, int] | None:
    """Role a top-level folder's name suggests, with the name's rank of preference."""
    return _NAME_ROLES.get(_fold(path[0])) if len(path) == 1 else None


def _source_role(path: _Path, flags: frozenset[str]) -> Role | None:
    """Role of a source folder: the inbox, else by attribute, else by top-level name."""
    if path == (INBOX,):
        return Role.INBOX
    named = _name_role(path)
    return _attribute_role(flags) or (named[0] if named else None)


@dataclass(frozen=True)
class _Node:
    """A source folder inside the mailbox, with its logical path and role."""

    folder: RemoteFolder
    flags: frozenset[str]  # casefolded
    path: _Path
    role: Role | None


class _Target:
    """The target mailbox: what exists, which folder carries each role, how names are spelled."""

    def __init__(self, folders: Sequence[RemoteFolder], namespace: Namespace) -> None:
        self.namespace = namespace
        # Folders that can hold mail; a \Noselect one is only a level of the hierarchy, and a
        # copied folder landing there must still be created.
        self.existing = {
            self.key(folder.name)
            for folder in folders
            if not {_NONEXISTENT, _NOSELECT} & {flag.casefold() for flag in folder.flags}
        }
        self._by_attribute: dict[Role, _Path] = {}
        usable = []
        for folder in folders:
            flags = frozenset(flag.casefold() for flag in folder.flags)
            path = _logical_path(folder.name, folder.delimiter, namespace)
            if path is not None and not flags & {_NOSELECT, _NONEXISTENT}:
                usable.append((path, flags))
        for path, flags in sorted(usable, key=lambda item: _path_key(item[0])):
            role = _attribute_role(flags)
            if role is not None:
                self._by_attribute.setdefault(role, path)

    def role_path(self, role: Role) -> _Path | None:
        """Target path of the folder carrying a role; None when the target has none."""
        if role is Role.INBOX:
            return (INBOX,)
        return self._by_attribute.get(role)

    def name(self, path: _Path) -> str:
        """Full target name of a path; ``("INBOX",)`` is the inbox itself."""
        return INBOX if path == (INBOX,) else self._join(path)

    def hierarchy(self, path: _Path) -> list[tuple[str, _Path]]:
        """Full name and path of a target folder and of each folder above it, parents first."""
        above = [path[:depth] for depth in range(1, len(path))] if self.namespace.delimiter else []
        return [(self._join(parent), parent) for parent in above] + [(self.name(path), path)]

    def key(self, name: str) -> str:
        """Identity of a target name: INBOX caseless, the rest exact."""
        return _canonical_inbox(name, self.namespace.delimiter)

    def sanitize(self, component: str) -> tuple[str, str | None]:
        """A source name component made safe as one target level, and a note if changed."""
        delimiter = self.namespace.delimiter
        if not delimiter or delimiter not in component:
            return component, None
        safe = component.replace(delimiter, SEPARATOR_REPLACEMENT)
        return safe, (
            f"{component!r} contains the target's hierarchy delimiter {delimiter!r}; "
            f"named {safe!r}"
        )

    def _join(self, path: _Path) -> str:
        return self.namespace.prefix + (self.namespace.delimiter or _FLAT_JOIN).join(path)


def _dedupe(folders: Iterable[RemoteFolder]) -> list[RemoteFolder]:
    """One entry per name (a server may list a name twice), attributes united."""
    merged: dict[str, RemoteFolder] = {}
    for folder in folders:
        seen = merged.get(folder.name)
        merged[folder.name] = (
            folder if seen is None else RemoteFolder(seen.name, seen.delimiter, seen.flags | folder.flags)
        )
    return list(merged.values())


def _resolve_user_root(user_root: str, paths: Sequence[_Path], namespace: Namespace) -> _Path:
    """The source path of the UserRoot folder, read the first way that matches a folder."""
    for reading in _spellings(user_root.strip(_PATH_SEPARATOR), namespace.delimiter, _prefix_path(namespace)):
        if any(path[: len(reading)] == reading for path in paths):
            return reading
    raise UserRootNotFound(user_root)


def _resolve_excludes(
    excludes: ExcludeFilter, nodes: Sequence[_Node], namespace: Namespace
) -> list[_Rule]:
    """Turn patterns into caseless base paths for this source's folders."""
    delimiter = namespace.delimiter
    prefix = _prefix_path(namespace)
    wellknown: dict[Role, list[_Path]] = {}
    for node in nodes:
        if node.role is not None:
            wellknown.setdefault(node.role, []).append(node.path)
    rules = []
    for pattern in excludes.patterns:
        if pattern.recursive_separator not in (None, _PATH_SEPARATOR, delimiter):
            raise InvalidExcludePattern(
                pattern.text,
                f"{pattern.recursive_separator + '*'!r} works only where the source's hierarchy "
                f"delimiter is {pattern.recursive_separator!r} (here it is {delimiter!r}); "
                "write '/*'",
            )
        if pattern.anchor is None:
            bases = _spellings(pattern.relative, delimiter, prefix) if pattern.relative else [()]
        else:
            below = _spellings(pattern.relative, delimiter, ()) if pattern.relative else [()]
            bases = [start + rest for start in wellknown.get(pattern.anchor, []) for rest in below]
        folded = tuple(tuple(_fold(part) for part in base) for base in bases)
        rules.append(_Rule(pattern.text, folded, pattern.recursive))
    return rules


def plan_mailbox(
    source: Sequence[RemoteFolder],
    source_ns: Namespace,
    target: Sequence[RemoteFolder],
    target_ns: Namespace,
    *,
    exclude: Sequence[str] = (),
    user_root: str | None = None,
) -> MailboxPlan:
    """Plan how one mailbox's folders are copied (the rules are in the module docstring).

    Args:
        source: Every folder LIST returned on the source.
        source_ns: The source's personal namespace.
        target: Every folder LIST returned on the target.
        target_ns: The target's personal namespace; new names use its prefix and delimiter.
        exclude: ExcludeFolders patterns (see :func:`parse_excludes`).
        user_root: Path of the user's folder when an administrator reads a shared-folder
            tree (Courier, Oracle), relative to the personal namespace and written with
            ``/`` or the source delimiter, a leading ``/`` allowed; that folder becomes the
            inbox and its children top-level folders. None, ``""`` or ``"/"`` for the whole
            namespace.

    Returns:
        The folders to copy and their targets, the target folders to create, and the source
        folders excluded or skipped, each in path order (inbox first).

    Raises:
        InvalidExcludePattern: A pattern is malformed, or ends in ``.*`` on a source whose
            delimiter is not ``.``.
        UserRootNotFound: No source folder lies at or below ``user_root``.
    """
    excludes = parse_excludes(exclude)
    skipped: list[tuple[str, SkipReason]] = []
    located: list[tuple[RemoteFolder, _Path]] = []
    for folder in _dedupe(source):
        path = _logical_path(folder.name, folder.delimiter, source_ns)
        if path is None:
            skipped.append((folder.name, SkipReason.OUTSIDE_NAMESPACE))
        else:
            located.append((folder, path))
    located.sort(key=lambda item: _path_key(item[1]))
    skipped.sort()

    if user_root and user_root.strip(_PATH_SEPARATOR):
        root = _resolve_user_root(user_root, [path for _, path in located], source_ns)
        inside = []
        for folder, path in located:
            if path[: len(root)] != root:
                skipped.append((folder.name, SkipReason.OUTSIDE_USER_ROOT))
            else:
                inside.append((folder, path[len(root) :] or (INBOX,)))
        located = sorted(inside, key=lambda item: _path_key(item[1]))

    nodes = []
    for folder, path in located:
        flags = frozenset(flag.casefold() for flag in folder.flags)
        nodes.append(_Node(folder, flags, path, _source_role(path, flags)))

    targets = _Target(target, target_ns)
    primary = _role_folders(nodes)
    mapped, landed = _map_targets(nodes, targets, primary)
    rules = _resolve_excludes(excludes, nodes, source_ns)

    folders: list[FolderPlan] = []
    excluded: list[tuple[str, str]] = []
    create: dict[str, _Path] = {}
    special_use: dict[str, str] = {}
    for node in nodes:
        folded = tuple(_fold(part) for part in node.path)
        pattern = next((rule.text for rule in rules if rule.matches(folded)), None)
        if pattern is not None:
            excluded.append((node.folder.name, pattern))
        elif _NONEXISTENT in node.flags:
            skipped.append((node.folder.name, SkipReason.NONEXISTENT))
        elif _NOSELECT in node.flags:
            skipped.append((node.folder.name, SkipReason.NOSELECT))
        else:
            target_path, note = mapped[node.folder.name]
            name = targets.name(target_path)
            role = node.role if node.role is Role.INBOX or node.folder.name in primary else None
            folders.append(FolderPlan(node.folder.name, node.path, role, name, note))
            if targets.key(name) != INBOX and targets.key(name) not in targets.existing:
                create.setdefault(name, target_path)
                attribute = SPECIAL_USE_ATTRIBUTES.get(role) if role else None
                if attribute and node.folder.name not in landed:
                    special_use[name] = attribute
    return MailboxPlan(
        folders=folders,
        create=sorted(create, key=lambda name: _path_key(create[name])),
        excluded=excluded,
        skipped=skipped,
        special_use=special_use,
    )


def _role_folders(nodes: Sequence[_Node]) -> set[str]:
    """The source folder of each role other than the inbox (by name): the one carrying the
    attribute, else the one named first in :data:`ROLE_NAMES`; path order breaks ties."""
    best: dict[Role, tuple[tuple[int, int, int], str]] = {}
    for order, node in enumerate(nodes):
        if node.role is None or node.role is Role.INBOX:
            continue
        named = _name_role(node.path)
        marked = _attribute_role(node.flags) is node.role
        rank = named[1] if named is not None and named[0] is node.role else len(_NAME_ROLES)
        key = (0 if marked else 1, rank, order)
        if node.role not in best or key < best[node.role][0]:
            best[node.role] = (key, node.folder.name)
    return {name for _, name in best.values()}


def _map_targets(
    nodes: Sequence[_Node], targets: _Target, primary: Collection[str]
) -> tuple[dict[str, tuple[_Path, str | None]], set[str]]:
    """Target path and note for every source folder (by name), parents before children, and
    the source folders that landed in the target's folder of their role.

    Role folders claim the target's special-use folders first so an ordinary folder can never
    push one aside; the others follow in path order, each below its nearest listed ancestor.
    A target name is never given to two source folders.
    """
    by_path: dict[_Path, _Path] = {}
    claims: dict[str, str] = {}  # target key -> who holds it
    result: dict[str, tuple[_Path, str | None]] = {}
    landed: set[str] = set()
    for node in nodes:
        if node.role is None or (node.role is not Role.INBOX and node.folder.name not in primary):
            continue
        role_path = targets.role_path(node.role)
        if role_path is None or targets.key(targets.name(role_path)) in claims:
            continue
        claims[targets.key(targets.name(role_path))] = f"source folder {node.folder.name!r}"
        by_path.setdefault(node.path, role_path)
        result[node.folder.name] = (role_path, None)
        landed.add(node.folder.name)
    # The target's inbox exists whether or not the source listed one.
    claims.setdefault(INBOX, "the inbox")

    for node in nodes:
        if node.folder.name in result:
            continue
        depth = next((d for d in range(len(node.path) - 1, 0, -1) if node.path[:d] in by_path), 0)
        base_path = by_path[node.path[:depth]] if depth else ()
        notes = []
        parts = []
        for component in node.path[depth:]:
            safe, note = targets.sanitize(component)
            parts.append(safe)
            if note:
                notes.append(note)
        path = base_path + tuple(parts)
        wanted = targets.name(path)
        holder = claims.get(targets.key(wanted))
        if holder is not None:
            number = 2
            while True:
                renamed = DISAMBIGUATION_FORMAT.format(name=parts[-1], n=number)
                path = base_path + (*parts[:-1], renamed)
                if targets.key(targets.name(path)) not in claims:
                    break
                number += 1
            notes.append(f"{wanted!r} is already the target of {holder}; named {targets.name(path)!r}")
        claims.setdefault(targets.key(targets.name(path)), f"source folder {node.folder.name!r}")
        by_path.setdefault(node.path, path)
        result[node.folder.name] = (path, "; ".join(notes) or None)
    return result, landed


# -- names the target refuses -------------------------------------------------------------


def target_path(name: str, namespace: Namespace) -> tuple[str, ...] | None:
    """The path of a target folder name below the target's prefix (``("INBOX",)`` for the
    inbox); None when the name lies outside the personal namespace."""
    return _logical_path(name, namespace.delimiter, namespace)


def target_name(path: Sequence[str], namespace: Namespace) -> str:
    """The full target name of a path below the target's prefix (the inverse of :func:`target_path`)."""
    return INBOX if tuple(path) == (INBOX,) else namespace.prefix + (namespace.delimiter or _FLAT_JOIN).join(path)


def _refusable(char: str) -> bool:
    return char in REFUSED_CHARACTERS or ord(char) < 0x20 or ord(char) == 0x7F


def legal_names(
    path: Sequence[str],
    *,
    existing: int,
    cannot_nest: bool,
    taken: Collection[tuple[str, ...]] = (),
) -> list[tuple[tuple[str, ...], str]]:
    """The names to try, in order, for a target folder whose CREATE the target refused.

    The one rule of the module docstring (6.): step 1 replaces the characters of
    :data:`REFUSED_CHARACTERS` and control characters with ``_`` in the levels that do not
    exist yet; step 2, only where the target's folders cannot have children, joins the levels
    from the nearest existing ancestor down with ``_`` (``("Parent", "Child")`` becomes
    ``("Parent_Child",)``). Each step applies to the result of the one before and gives a
    candidate only when it changes the name. A candidate already in ``taken`` gets the numeric
    suffix of :data:`DISAMBIGUATION_FORMAT` on its last level.

    Args:
        path: The refused folder's path below the target's prefix.
        existing: How many leading levels of ``path`` exist on the target (never changed).
        cannot_nest: True when the nearest existing ancestor cannot have children (listed
            ``\\NoInferiors``, or the CREATE answer said so: see :func:`refused_for_nesting`).
        taken: Paths other source folders land in.

    Returns:
        ``(path, what was done)`` for each name to try, in order; empty when the rule has
        nothing to offer (the folder cannot be created).
    """
    current = tuple(path)
    existing = max(0, min(existing, len(current) - 1))
    steps: list[tuple[tuple[str, ...], str]] = []
    cleaned = current[:existing] + tuple(
        "".join(SEPARATOR_REPLACEMENT if _refusable(char) else char for char in part) for part in current[existing:]
    )
    if cleaned != current:
        steps.append((cleaned, f"characters the target refuses replaced by {SEPARATOR_REPLACEMENT!r}"))
        current = cleaned
    if cannot_nest and len(current) > 1:
        start = max(existing, 1) - 1
        joined = current[:start] + (SEPARATOR_REPLACEMENT.join(current[start:]),)
        steps.append((joined, "the target's folders cannot have subfolders there: levels joined into one"))
    out = []
    for candidate, why in steps:
        if candidate in taken:
            number = 2
            while (renamed := (*candidate[:-1], DISAMBIGUATION_FORMAT.format(name=candidate[-1], n=number))) in taken:
                number += 1
            candidate, why = renamed, f"{why}, numbered (the name is another folder's target)"
        out.append((candidate, why))
    return out


def refused_for_nesting(answer: str) -> bool:
    """Whether a refused CREATE's answer says (or may say) that the parent cannot have
    children: a ``[CANNOT]`` or ``[NOINFERIORS]`` code, or words about inferior mailboxes."""
    upper = answer.upper()
    return "[CANNOT]" in upper or "NOINFERIORS" in upper or "INFERIOR" in upper


def refused_for_missing_parent(answer: str) -> bool:
    """Whether a refused CREATE's answer says the parent folder does not exist (a server that
    does not make the hierarchy itself): ``[NONEXISTENT]``, or a parent said to be missing."""
    lowered = answer.lower()
    return "[nonexistent]" in lowered or (
        "parent" in lowered and any(word in lowered for word in ("not exist", "n't exist", "nonexist", "missing", "not found"))
    )


# -- subscriptions ------------------------------------------------------------------------


def subscription_changes(
    folders: Sequence[FolderPlan],
    source_subscribed: Iterable[str],
    source_ns: Namespace,
    target_subscribed: Iterable[str],
    target_ns: Namespace,
    *,
    hierarchy: Iterable[str] = (),
) -> tuple[list[str], list[str]]:
    """What makes the target's subscriptions of the copied folders equal the source's.

    Args:
        folders: The copied folders (their final target names).
        source_subscribed: The names the source subscribes (LSUB).
        source_ns: The source's namespace (INBOX is compared caselessly).
        target_subscribed: The names the target subscribes now.
        target_ns: The target's namespace.
        hierarchy: Target folders created only as parents, never to be subscribed.

    Returns:
        The target names to subscribe and those to unsubscribe, each in plan order.
    """
    wanted = {_canonical_inbox(name, source_ns.delimiter) for name in source_subscribed}
    have = {_canonical_inbox(name, target_ns.delimiter) for name in target_subscribed}
    subscribe: list[str] = []
    unsubscribe: list[str] = []
    decided: set[str] = set()
    for plan in folders:
        name = _canonical_inbox(plan.target, target_ns.delimiter)
        if name in decided:
            continue
        decided.add(name)
        want = _canonical_inbox(plan.source, source_ns.delimiter) in wanted
        if want and name not in have:
            subscribe.append(plan.target)
        elif not want and name in have:
            unsubscribe.append(plan.target)
    for parent in hierarchy:
        name = _canonical_inbox(parent, target_ns.delimiter)
        if name not in decided and name in have:
            decided.add(name)
            unsubscribe.append(parent)
    return subscribe, unsubscribe
