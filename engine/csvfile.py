"""Migration CSV files (``New-MigrationBatch -CSVData``): decode, parse, validate, resolve.

Pure code over bytes, with no IO. :func:`parse_migration_csv` takes the bytes a script passed
as ``-CSVData`` and the batch's :class:`MigrationType`, and either returns a :class:`CsvFile`
whose rows carry each user's effective settings, or raises :class:`CsvError` listing *every*
problem it found, each with the line a text editor shows and a hint on how to fix it.

What is read, as administrators produce it:

* **Encodings.** UTF-8 with or without a byte-order mark; UTF-16 little- or big-endian with a
  byte-order mark (what Excel's "Unicode Text" writes). Bytes that are not valid in the
  encoding, typically an ANSI file from Excel's plain "CSV (Comma delimited)", are a problem
  on each line where they occur.
* **Separators.** Commas. Excel's "Unicode Text" separates columns with TABs instead, so a
  file whose header line contains a TAB and no comma is read as TAB-separated throughout.
* **Lines.** CRLF, LF or CR line endings; blank lines and rows whose cells are all blank are
  skipped, also before the header. A value in double quotes may hold commas, doubled quotes
  and line breaks; a row spanning several lines is reported at the line where it starts.
* **Header.** The first line names the columns. Names match regardless of case and are
  reported in Exchange's spelling; a name with spaces or punctuation (``Email Address``,
  ``emailaddress ``) is always a problem naming the right spelling, even when unknown columns
  are allowed, because ignoring it would silently drop the values under it.
* **Cells.** Every row has as many cells as the header has columns (a value-less cell keeps
  its comma: ``user2@contoso.com,,``). Spaces around a value are ignored where a value cannot
  contain them (EmailAddress, the limits, MailboxType, ForceChangePassword and database
  names); UserName, Password and UserRoot are taken exactly as written.
* **Control characters.** No cell of a known column may hold a C0 control character
  (U+0000 to U+001F: NUL, CR, LF, ...) or DEL: these values go into IMAP command lines, where
  a line break would start a command of the file's choosing. A TAB is allowed in Password
  only (IMAP carries it in a quoted string, and a user may have chosen one). Each such cell is
  a problem with its line and column; the value is never quoted back.

The columns of each migration type (Exchange's "CSV files for mailbox migration"):

=====================  ==========================================================================
IMAP                   EmailAddress, UserName, Password (all required); UserRoot
local move             EmailAddress (required); TargetDatabase, TargetArchiveDatabase,
                       BadItemLimit, MailboxType
onboarding remote      EmailAddress (required); BadItemLimit, LargeItemLimit, MailboxType
offboarding remote,    EmailAddress (required); TargetDatabase, TargetArchiveDatabase,
cross-forest move      BadItemLimit, LargeItemLimit, MailboxType
staged                 EmailAddress (required); Password (8 characters or more),
                       ForceChangePassword
=====================  ==========================================================================

TargetDatabase is required for offboarding moves and for cross-forest moves initiated from the
source forest, unless the batch gives target databases: then each row may leave it blank.

Per-row overrides: a non-blank BadItemLimit, LargeItemLimit, MailboxType, TargetDatabase,
TargetArchiveDatabase or ForceChangePassword cell overrides the batch's value for that user; a
blank cell inherits it, and a value neither gives is Exchange's default. The result is each
row's :class:`RowSettings`.

Passwords never appear in a ``repr`` or ``str`` of these objects, nor in any error message: a
Password cell is never quoted back, and another cell quoted back in a message is masked when it
contains its row's password (a password typed into the EmailAddress column, say).
"""

from __future__ import annotations

import csv
import difflib
import io
import re
from codecs import BOM_UTF8, BOM_UTF16_BE, BOM_UTF16_LE
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypeVar

from engine.controls import control_character, describe_control
from engine.defaults import BAD_ITEM_LIMIT, LARGE_ITEM_LIMIT, UNLIMITED
from engine.errors import ConfigurationError

_T = TypeVar("_T")

__all__ = [
    "MAX_CSV_BYTES",
    "MAX_ROWS",
    "MAX_STAGED_ROWS",
    "CsvError",
    "CsvFile",
    "CsvProblem",
    "CsvRow",
    "MailboxType",
    "MigrationType",
    "RowSettings",
    "parse_migration_csv",
]

#: Largest CSV file accepted, in bytes (Exchange Online's 10 MB).
MAX_CSV_BYTES = 10 * 1024 * 1024

#: Most user rows in one CSV file, in rows, for every migration type but staged.
MAX_ROWS = 50_000

#: Most user rows in one staged-migration CSV file, in rows.
MAX_STAGED_ROWS = 1_000

#: Largest value of BadItemLimit and LargeItemLimit, in items (a .NET Int32).
_MAX_LIMIT = 2_147_483_647

#: Shown in place of a password.
_MASK = "********"

#: Fewest characters of a staged-migration password.
_MIN_STAGED_PASSWORD = 8

#: Longest value quoted back in a message, in characters; longer ones are cut with "...".
_SHOWN_CHARS = 60


class MigrationType(StrEnum):
    """The kind of batch a CSV file is for; it decides the columns and the row limit.

    The values follow Exchange's ``MigrationType`` names, split where Exchange's CSV rules
    differ within one type (its ``ExchangeRemoteMove`` covers onboarding, offboarding and
    cross-forest moves).
    """

    #: IMAP migration from any IMAP server to the target mailboxes.
    IMAP = "IMAP"
    #: Move between mailbox databases of one organization.
    LOCAL_MOVE = "ExchangeLocalMove"
    #: Hybrid remote move from on-premises Exchange to Exchange Online.
    REMOTE_ONBOARDING = "ExchangeRemoteMoveOnboarding"
    #: Hybrid remote move from Exchange Online back to on-premises Exchange.
    REMOTE_OFFBOARDING = "ExchangeRemoteMoveOffboarding"
    #: Move between two Exchange forests (see ``source_forest_initiated``).
    CROSS_FOREST = "ExchangeCrossForestMove"
    #: Staged Exchange migration (Exchange 2003/2007 to Exchange Online).
    STAGED = "StagedExchange"


class MailboxType(StrEnum):
    """Which parts of a mailbox a move takes (the MailboxType column)."""

    PRIMARY_ONLY = "PrimaryOnly"
    ARCHIVE_ONLY = "ArchiveOnly"
    PRIMARY_AND_ARCHIVE = "PrimaryAndArchive"


@dataclass(frozen=True, slots=True)
class RowSettings:
    """One user's effective settings: the row's cell, else the batch's value, else the default.

    Settings a migration type has no column for still take the batch's value (an IMAP batch's
    BadItemLimit applies to every IMAP user), or the default.
    """

    #: Skipped corrupt items allowed before the user fails; ``UNLIMITED`` (-1) for no limit.
    bad_item_limit: int = BAD_ITEM_LIMIT
    #: Skipped large items allowed before the user fails; ``UNLIMITED`` (-1) for no limit.
    large_item_limit: int = LARGE_ITEM_LIMIT
    #: Which parts of the mailbox are moved.
    mailbox_type: MailboxType = MailboxType.PRIMARY_AND_ARCHIVE
    #: Databases the primary mailbox may go to (the batch may give several); () = any.
    target_databases: tuple[str, ...] = ()
    #: Databases the archive mailbox may go to; () = any.
    target_archive_databases: tuple[str, ...] = ()
    #: Staged migration: must the user change the password at first sign-in; None = not said.
    force_change_password: bool | None = None


class _Cells(dict[str, str]):
    """A row's cells by column name, whose repr masks the password."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr({
            name: _MASK if name == _PASSWORD and value else value for name, value in self.items()
        })


@dataclass(frozen=True, slots=True)
class CsvRow:
    """One user of the file, valid for its migration type."""

    #: Line where the row starts, as a text editor numbers lines (the header is usually 1).
    line: int
    #: The user's e-mail address as written, without surrounding spaces.
    email: str
    #: Cells of the known columns by canonical column name, exactly as written (a password
    #: included; the repr masks it).
    values: dict[str, str]
    #: The user's effective settings, per-row overrides applied to the batch's values.
    settings: RowSettings


@dataclass(frozen=True, slots=True)
class CsvFile:
    """A valid CSV file: its known columns, its users, and what was ignored."""

    migration_type: MigrationType
    #: Known columns in file order, in canonical spelling; ignored columns are not listed.
    columns: list[str]
    #: One entry per user, in file order.
    rows: list[CsvRow]
    #: Things ignored on purpose (unknown columns when allowed), each naming its line.
    warnings: list[str]

    def __repr__(self) -> str:
        return (
            f"CsvFile(migration_type={self.migration_type.value!r}, columns={self.columns!r}, "
            f"rows=<{len(self.rows)} rows>, warnings={self.warnings!r})"
        )


@dataclass(frozen=True, slots=True)
class CsvProblem:
    """One thing wrong with a CSV file."""

    #: Line as a text editor numbers it (where a multi-line row starts); 0 = the whole file.
    line: int
    #: Canonical name of the column concerned, or None when the problem is not one cell's.
    column: str | None
    #: What is wrong and how to fix it; never contains a password.
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "CSV data"
        if self.column is not None:
            where += f", column {self.column}"
        return f"{where}: {self.message}"


class CsvError(ConfigurationError):
    """Raised when CSV data cannot make a batch; carries every problem found, in line order."""

    def __init__(self, problems: Iterable[CsvProblem]) -> None:
        self.problems = sorted(problems, key=lambda problem: problem.line)
        super().__init__("\n".join(map(str, self.problems)))

    def __reduce__(self) -> tuple[type[CsvError], tuple[list[CsvProblem]]]:
        # Rebuilt from the problems, not the message, when it crosses a process boundary.
        return (type(self), (self.problems,))


# --- the columns of each migration type ---------------------------------------------------

_EMAIL_ADDRESS = "EmailAddress"
_USER_NAME = "UserName"
_PASSWORD = "Password"
_USER_ROOT = "UserRoot"
_TARGET_DATABASE = "TargetDatabase"
_TARGET_ARCHIVE_DATABASE = "TargetArchiveDatabase"
_BAD_ITEM_LIMIT = "BadItemLimit"
_LARGE_ITEM_LIMIT = "LargeItemLimit"
_MAILBOX_TYPE = "MailboxType"
_FORCE_CHANGE_PASSWORD = "ForceChangePassword"

_MOVE_COLUMNS = (
    _EMAIL_ADDRESS,
    _TARGET_DATABASE,
    _TARGET_ARCHIVE_DATABASE,
    _BAD_ITEM_LIMIT,
    _LARGE_ITEM_LIMIT,
    _MAILBOX_TYPE,
)

#: Every column a migration type knows, in the order messages list them.
_COLUMNS: Mapping[MigrationType, tuple[str, ...]] = MappingProxyType({
    MigrationType.IMAP: (_EMAIL_ADDRESS, _USER_NAME, _PASSWORD, _USER_ROOT),
    MigrationType.LOCAL_MOVE: (
        _EMAIL_ADDRESS, _TARGET_DATABASE, _TARGET_ARCHIVE_DATABASE, _BAD_ITEM_LIMIT, _MAILBOX_TYPE,
    ),
    MigrationType.REMOTE_ONBOARDING: (
        _EMAIL_ADDRESS, _BAD_ITEM_LIMIT, _LARGE_ITEM_LIMIT, _MAILBOX_TYPE,
    ),
    MigrationType.REMOTE_OFFBOARDING: _MOVE_COLUMNS,
    MigrationType.CROSS_FOREST: _MOVE_COLUMNS,
    MigrationType.STAGED: (_EMAIL_ADDRESS, _PASSWORD, _FORCE_CHANGE_PASSWORD),
})

#: Columns the header must have, per migration type.
_REQUIRED: Mapping[MigrationType, tuple[str, ...]] = MappingProxyType({
    kind: (_EMAIL_ADDRESS,) for kind in MigrationType
} | {MigrationType.IMAP: (_EMAIL_ADDRESS, _USER_NAME, _PASSWORD)})

#: How messages name each migration type.
_LABELS: Mapping[MigrationType, str] = MappingProxyType({
    MigrationType.IMAP: "IMAP migration",
    MigrationType.LOCAL_MOVE: "local move",
    MigrationType.REMOTE_ONBOARDING: "onboarding remote move",
    MigrationType.REMOTE_OFFBOARDING: "offboarding remote move",
    MigrationType.CROSS_FOREST: "cross-forest move",
    MigrationType.STAGED: "staged migration",
})

#: Every column of any type, by its squashed spelling (lower case, no spaces or punctuation).
_ANY_COLUMN: Mapping[str, str] = MappingProxyType({
    name.lower(): name for columns in _COLUMNS.values() for name in columns
})

#: What is removed from a header name to see whether it is a misspelt attribute name.
_SQUASH = re.compile(r"[\s_.\-]+")

# --- values -----------------------------------------------------------------------------

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_LOCAL_PART = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
_DOMAIN = rf"(?:{_LABEL}\.)+[A-Za-z](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?"
#: An SMTP address as Exchange's SmtpAddress takes it: ASCII dot-atom @ a dotted host name.
_EMAIL = re.compile(rf"{_LOCAL_PART.pattern}@{_DOMAIN}")
_MAX_LOCAL_PART = 64
_MAX_ADDRESS = 254

_MAILBOX_TYPES: Mapping[str, MailboxType] = MappingProxyType({
    kind.value.lower(): kind for kind in MailboxType
})
_MAILBOX_TYPE_HINT = "use PrimaryOnly, ArchiveOnly or PrimaryAndArchive"
_BOOLEANS: Mapping[str, bool] = MappingProxyType({"true": True, "false": False})


class _Invalid(Exception):
    """A value cannot be used; carries the message that says why."""


def _show(value: str, secret: str = "") -> str:
    """``value`` quoted for a message: masked if it holds the row's password, cut if long."""
    if secret and secret in value:
        return _MASK
    if len(value) > _SHOWN_CHARS:
        value = value[:_SHOWN_CHARS] + "..."
    return repr(value)


def _email_problem(address: str) -> str | None:
    """Why ``address`` (stripped, non-empty) is not a usable SMTP address, or None if it is."""
    if len(address) <= _MAX_ADDRESS and _EMAIL.fullmatch(address):
        local = address.partition("@")[0]
        if len(local) <= _MAX_LOCAL_PART:
            return None
        return f"the part before @ is longer than {_MAX_LOCAL_PART} characters"
    if any(char.isspace() for char in address):
        return "it contains a space or line break; remove it"
    if not address.isascii():
        return (
            "it contains non-ASCII characters; write an internationalized domain in its xn-- form"
        )
    if "@" not in address:
        return "it has no @; write the whole address, e.g. terrya@contoso.com"
    local, _, domain = address.partition("@")
    if "@" in domain:
        return "it has more than one @"
    if not local:
        return "nothing comes before the @"
    if not domain:
        return "the domain after @ is missing"
    if not _LOCAL_PART.fullmatch(local):
        return (
            "the part before @ may only hold letters, digits, dots (not first, last or doubled) "
            "and !#$%&'*+/=?^_`{|}~-"
        )
    if len(address) > _MAX_ADDRESS:
        return f"it is longer than {_MAX_ADDRESS} characters"
    return f"{domain!r} is not a domain name; write a full one such as contoso.com"


def _parse_limit(text: str) -> int:
    """A BadItemLimit/LargeItemLimit value: ``Unlimited`` (any case) or 0..2147483647."""
    if text.lower() == "unlimited":
        return UNLIMITED
    if text.isascii() and text.isdigit() and int(text) <= _MAX_LIMIT:
        return int(text)
    raise _Invalid(f"use a whole number from 0 to {_MAX_LIMIT} or Unlimited")


def _parse_mailbox_type(text: str) -> MailboxType:
    """A MailboxType value in any case."""
    try:
        return _MAILBOX_TYPES[text.lower()]
    except KeyError:
        raise _Invalid(_MAILBOX_TYPE_HINT) from None


def _parse_boolean(text: str) -> bool:
    """A ForceChangePassword value: True or False in any case."""
    try:
        return _BOOLEANS[text.lower()]
    except KeyError:
        raise _Invalid("use True or False") from None


# --- batch values -------------------------------------------------------------------------


def _batch_settings(defaults: Mapping[str, object]) -> RowSettings:
    """The batch's values as settings; unknown names or invalid values raise ConfigurationError."""
    errors = [
        f"{name!r} is not a per-user setting; use one of {', '.join(_OVERRIDES)}"
        for name in defaults
        if name not in _OVERRIDES
    ]

    def take(name: str, convert: Callable[[object], _T], default: _T) -> _T:
        value = defaults.get(name)
        if value is None:
            return default
        try:
            return convert(value)
        except _Invalid as exc:
            errors.append(f"{name} {value!r}: {exc}")
            return default

    settings = RowSettings(
        bad_item_limit=take(_BAD_ITEM_LIMIT, _batch_limit, BAD_ITEM_LIMIT),
        large_item_limit=take(_LARGE_ITEM_LIMIT, _batch_limit, LARGE_ITEM_LIMIT),
        mailbox_type=take(_MAILBOX_TYPE, _batch_mailbox_type, MailboxType.PRIMARY_AND_ARCHIVE),
        target_databases=take(_TARGET_DATABASE, _batch_databases, ()),
        target_archive_databases=take(_TARGET_ARCHIVE_DATABASE, _batch_databases, ()),
        force_change_password=take(_FORCE_CHANGE_PASSWORD, _batch_boolean, None),
    )
    if errors:
        raise ConfigurationError("invalid batch values: " + "; ".join(errors))
    return settings


def _batch_limit(value: object) -> int:
    """A batch's BadItemLimit or LargeItemLimit: an int (``UNLIMITED`` included) or text."""
    if isinstance(value, str):
        return _parse_limit(value.strip())
    if isinstance(value, int) and not isinstance(value, bool):
        if value == UNLIMITED or 0 <= value <= _MAX_LIMIT:
            return value
    raise _Invalid(
        f"use a whole number from 0 to {_MAX_LIMIT}, UNLIMITED ({UNLIMITED}) or \"Unlimited\""
    )


def _batch_mailbox_type(value: object) -> MailboxType:
    """A batch's MailboxType: a MailboxType or its name in any case."""
    if isinstance(value, str):
        return _parse_mailbox_type(value.strip())
    raise _Invalid(_MAILBOX_TYPE_HINT)


def _batch_databases(value: object) -> tuple[str, ...]:
    """A batch's TargetDatabase(s) or TargetArchiveDatabase(s): a name or a sequence of names."""
    names = [value] if isinstance(value, str) else value
    if isinstance(names, Sequence):
        if all(isinstance(name, str) and name.strip() for name in names):
            return tuple(name.strip() for name in names)
    raise _Invalid("give a database name or a list of database names")


def _batch_boolean(value: object) -> bool:
    """A batch's ForceChangePassword: a bool, or True/False as text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _parse_boolean(value.strip())
    raise _Invalid("use True or False")


# --- bytes to text ----------------------------------------------------------------------------


def _count_line_breaks(text: str) -> int:
    """Line breaks in ``text``, CRLF counting once, as the csv reader splits lines."""
    return text.count("\n") + text.count("\r") - text.count("\r\n")


def _decode(data: bytes, problems: list[CsvProblem]) -> str:
    """The text of ``data``; each line holding invalid bytes adds a problem, and U+FFFD."""
    if data.startswith(BOM_UTF8):
        encoding, body, name = "utf-8", data[len(BOM_UTF8):], "UTF-8"
    elif data.startswith(BOM_UTF16_LE):
        encoding, body, name = "utf-16-le", data[len(BOM_UTF16_LE):], "UTF-16"
    elif data.startswith(BOM_UTF16_BE):
        encoding, body, name = "utf-16-be", data[len(BOM_UTF16_BE):], "UTF-16"
    else:
        encoding, body, name = "utf-8", data, "UTF-8"
    try:
        return str(body, encoding)
    except UnicodeDecodeError:
        pass
    # Decode up to each invalid sequence and go on after it: linear, however many there are.
    view = memoryview(body)
    parts: list[str] = []
    line, position, last_bad_line = 1, 0, 0
    while True:
        try:
            parts.append(str(view[position:], encoding))
            return "".join(parts)
        except UnicodeDecodeError as exc:
            good = str(view[position:position + exc.start], encoding)
            parts += (good, "\ufffd")
            line += _count_line_breaks(good)
            position += exc.end
        if line != last_bad_line:
            last_bad_line = line
            problems.append(CsvProblem(line, None, (
                f"the line holds bytes that are not valid {name}; save the file as UTF-8 "
                "(Excel: \"CSV UTF-8 (Comma delimited)\") or as Excel's \"Unicode Text\""
            )))


def _delimiter(text: str) -> str:
    """TAB when the header line (first non-blank) has a TAB and no comma, else a comma."""
    header = text.lstrip("\r\n").split("\n", 1)[0].split("\r", 1)[0]
    return "\t" if "\t" in header and "," not in header else ","


# --- the header -----------------------------------------------------------------------------


def _read_header(
    line: int,
    cells: list[str],
    migration_type: MigrationType,
    need_database: bool,
    allow_unknown_columns: bool,
    problems: list[CsvProblem],
    warnings: list[str],
) -> dict[str, int] | None:
    """Positions of the known columns by canonical name; None when the line is no header."""
    known = _COLUMNS[migration_type]
    label = _LABELS[migration_type]
    by_lower = {name.lower(): name for name in known}
    squashed = [_SQUASH.sub("", cell).lower() for cell in cells]
    if len(cells) == 1 and ";" in cells[0]:
        problems.append(CsvProblem(line, None, (
            "the columns are separated by semicolons; separate them with commas (Excel writes "
            "semicolons where Windows' list separator is ';': replace them, or change that "
            "setting and save again)"
        )))
        return None
    if not any(name in by_lower for name in squashed) and any("@" in cell for cell in cells):
        # The cells are not quoted back: a user row may hold a password.
        problems.append(CsvProblem(line, None, (
            "the first line is a user, not a header; add a first line naming the columns, "
            f"e.g. {','.join(_REQUIRED[migration_type])}"
        )))
        return None
    positions: dict[str, int] = {}
    misspelt: set[str] = set()
    for index, (cell, plain) in enumerate(zip(cells, squashed)):
        number = index + 1
        name = by_lower.get(cell.lower())
        if name in positions:
            problems.append(CsvProblem(line, name, (
                f"the header names this column twice (columns {positions[name] + 1} and "
                f"{number}); delete one of them"
            )))
        elif name is not None:
            positions[name] = index
        elif plain in by_lower:
            misspelt.add(by_lower[plain])
            problems.append(CsvProblem(line, None, (
                f"column {number} is headed {_show(cell)}: attribute names are one word, "
                f"typed exactly; use {by_lower[plain]}"
            )))
        else:
            what = _unknown_column(number, cell, plain, label, by_lower)
            if allow_unknown_columns:
                warnings.append(f"line {line}: {what}; its values are ignored")
            else:
                problems.append(CsvProblem(line, None, (
                    f"{what}; the columns are {', '.join(known)}: delete it, or create the "
                    "batch with -AllowUnknownColumnsInCsv $true to ignore it"
                )))
    required = _REQUIRED[migration_type] + ((_TARGET_DATABASE,) if need_database else ())
    for name in required:
        if name not in positions and name not in misspelt:
            batch_hint = ", or give the batch -TargetDatabases" if name == _TARGET_DATABASE else ""
            problems.append(CsvProblem(line, name, (
                f"the header has no {name} column; {label} CSV files need "
                f"{', '.join(required)}{batch_hint}"
            )))
    return positions


def _unknown_column(
    number: int, cell: str, plain: str, label: str, by_lower: Mapping[str, str]
) -> str:
    """Describes a header cell that is no column of the type, with a hint when one fits."""
    if not cell.strip():
        return f"column {number} of the header has no name"
    what = f"column {number}, {_show(cell)}, is not a column of {label} CSV files"
    other = _ANY_COLUMN.get(plain)
    if other is not None:
        return f"{what} ({other} is for other migration types)"
    close = difflib.get_close_matches(plain, by_lower, n=1, cutoff=0.8)
    if close:
        return f"{what} (did you mean {by_lower[close[0]]}?)"
    return what


# --- the rows -----------------------------------------------------------------------------


def _one_database(name: str) -> tuple[str, ...]:
    """A TargetDatabase or TargetArchiveDatabase cell as the settings' list of databases."""
    return (name,)


#: How a non-blank cell of each overridable column becomes its RowSettings field.
_OVERRIDES: Mapping[str, tuple[str, Callable[[str], Any]]] = MappingProxyType({
    _BAD_ITEM_LIMIT: ("bad_item_limit", _parse_limit),
    _LARGE_ITEM_LIMIT: ("large_item_limit", _parse_limit),
    _MAILBOX_TYPE: ("mailbox_type", _parse_mailbox_type),
    _TARGET_DATABASE: ("target_databases", _one_database),
    _TARGET_ARCHIVE_DATABASE: ("target_archive_databases", _one_database),
    _FORCE_CHANGE_PASSWORD: ("force_change_password", _parse_boolean),
})


class _RowReader:
    """Checks data rows against the header, makes CsvRows of the valid ones, notes problems."""

    def __init__(
        self,
        width: int,
        positions: Mapping[str, int],
        staged: bool,
        batch: RowSettings,
        need_database: bool,
        problems: list[CsvProblem],
    ) -> None:
        ordered = sorted(positions.items(), key=lambda item: item[1])
        #: Known columns in file order.
        self.columns = [name for name, _ in ordered]
        self._width = width
        self._picks = [index for _, index in ordered]
        self._every_column_known = self._picks == list(range(width))
        self._overridable = [name for name in self.columns if name in _OVERRIDES]
        self._staged = staged
        self._batch = batch
        self._need_database = need_database
        self._problems = problems
        self._first_line_of: dict[str, int] = {}

    def read(self, line: int, cells: list[str]) -> CsvRow | None:
        """The row as a CsvRow, or None after noting its problems."""
        if len(cells) != self._width:
            self._problem(line, None, (
                f"the row has {len(cells)} values but the header has {self._width} columns; "
                "put a value holding a comma in double quotes, and keep one comma per empty value"
            ))
            return None
        if not self._every_column_known:
            cells = [cells[index] for index in self._picks]
        values = _Cells(zip(self.columns, cells))
        before = len(self._problems)
        secret = values.get(_PASSWORD, "")
        controlled = self._controls(line, values)
        email = values.get(_EMAIL_ADDRESS, "").strip() if _EMAIL_ADDRESS in controlled \
            else self._email(line, values.get(_EMAIL_ADDRESS), secret)
        if _USER_NAME in values and _USER_NAME not in controlled and not values[_USER_NAME].strip():
            self._problem(line, _USER_NAME, (
                "the value is empty; give the user's login on the IMAP server"
            ))
        if _PASSWORD in values and _PASSWORD not in controlled:
            self._password(line, secret)
        settings = self._settings(line, values, secret, controlled)
        if len(self._problems) > before:
            return None
        return CsvRow(line, email, values, settings)

    def _problem(self, line: int, column: str | None, message: str) -> None:
        self._problems.append(CsvProblem(line, column, message))

    def _controls(self, line: int, values: Mapping[str, str]) -> set[str]:
        """The columns whose cell holds a control character, each noted as a problem."""
        found: set[str] = set()
        for name, value in values.items():
            control = control_character(value, allow_tab=name == _PASSWORD)
            if control is None:
                continue
            found.add(name)
            allowed = " (a tab is allowed in a password)" if name == _PASSWORD else ""
            self._problem(line, name, (
                f"the value holds a control character, {describe_control(control)}; values sent "
                f"to the IMAP server may not hold control characters{allowed}: remove it"
            ))
        return found

    def _email(self, line: int, cell: str | None, secret: str) -> str:
        """The address without surrounding spaces; a problem if blank, invalid or repeated."""
        if cell is None:
            return ""
        address = cell.strip()
        if not address:
            self._problem(line, _EMAIL_ADDRESS, (
                "the value is empty; give the user's e-mail address"
            ))
            return address
        reason = _email_problem(address)
        if reason is not None:
            self._problem(line, _EMAIL_ADDRESS, (
                f"{_show(address, secret)} is not a valid e-mail address: {reason}"
            ))
            return address
        first = self._first_line_of.setdefault(address.lower(), line)
        if first != line:
            self._problem(line, _EMAIL_ADDRESS, (
                f"{address} is already on line {first}; a user may appear only once, so delete "
                "one of the two rows"
            ))
        return address

    def _password(self, line: int, password: str) -> None:
        """IMAP passwords must be given; staged ones, when given, must be long enough."""
        if self._staged:
            if password.strip() and len(password) < _MIN_STAGED_PASSWORD:
                self._problem(line, _PASSWORD, (
                    f"the password is shorter than {_MIN_STAGED_PASSWORD} characters; give a "
                    "longer one, or leave the cell empty"
                ))
        elif not password.strip():
            self._problem(line, _PASSWORD, (
                "the value is empty; give the password of the account in UserName"
            ))

    def _settings(self, line: int, values: Mapping[str, str], secret: str, controlled: set[str]) -> RowSettings:
        """The batch's settings with this row's non-blank override cells put over them."""
        changes: dict[str, Any] = {}
        for name in self._overridable:
            if name in controlled:
                continue
            text = values[name].strip()
            if not text:
                if name == _TARGET_DATABASE and self._need_database:
                    self._problem(line, name, (
                        "the value is empty and the batch gives no target database; name this "
                        "user's database, or give the batch -TargetDatabases"
                    ))
                continue
            field, parse = _OVERRIDES[name]
            try:
                changes[field] = parse(text)
            except _Invalid as exc:
                self._problem(line, name, f"{_show(text, secret)} is not a {name} value; {exc}")
        return replace(self._batch, **changes) if changes else self._batch


# --- the whole file -----------------------------------------------------------------------


def parse_migration_csv(
    data: bytes,
    migration_type: MigrationType,
    *,
    allow_unknown_columns: bool = False,
    batch_defaults: Mapping[str, object] | None = None,
    source_forest_initiated: bool = False,
) -> CsvFile:
    """Read a migration CSV file and check every row for its migration type.

    Args:
        data: The file's bytes, as ``-CSVData`` passes them (the module docstring lists the
            encodings, separators and line endings read).
        migration_type: The batch's kind; it decides the known and required columns and the
            row limit.
        allow_unknown_columns: ``-AllowUnknownColumnsInCsv``: ignore columns the type does
            not know (listed in :attr:`CsvFile.warnings`) instead of refusing the file.
        batch_defaults: The batch's values that blank cells inherit, by column name:
            ``BadItemLimit`` and ``LargeItemLimit`` (an int, ``UNLIMITED`` included, or text
            such as ``"Unlimited"``), ``MailboxType`` (text), ``TargetDatabase`` and
            ``TargetArchiveDatabase`` (a name or a sequence of names, e.g. the batch's
            ``-TargetDatabases``), ``ForceChangePassword`` (a bool or text). None values
            count as not given.
        source_forest_initiated: For :attr:`MigrationType.CROSS_FOREST`: the move is
            initiated from the source forest, so every user needs a TargetDatabase from the
            row or the batch, as in offboarding moves.

    Returns:
        The file's known columns, its users with their effective settings, and warnings.

    Raises:
        CsvError: The file cannot make a batch; lists every problem found.
        ConfigurationError: ``batch_defaults`` holds an unknown name or an invalid value, or
            ``source_forest_initiated`` is set for a type other than cross-forest.
    """
    migration_type = MigrationType(migration_type)
    if source_forest_initiated and migration_type is not MigrationType.CROSS_FOREST:
        raise ConfigurationError(
            "source_forest_initiated applies to cross-forest moves, not to "
            f"{_LABELS[migration_type]}s"
        )
    batch = _batch_settings(batch_defaults or {})
    if len(data) > MAX_CSV_BYTES:
        raise CsvError([CsvProblem(0, None, (
            f"the file is {len(data):,} bytes, more than the {MAX_CSV_BYTES:,} bytes (10 MB) "
            "allowed; split the users over several batches"
        ))])
    problems: list[CsvProblem] = []
    text = _decode(data, problems)
    nul = text.find("\x00")
    if nul >= 0 and not _count_line_breaks(text[:nul].lstrip("\r\n")):
        # On the header line, NULs mean UTF-16; on a later line, the cell holding one is a problem.
        problems.append(CsvProblem(1 + _count_line_breaks(text[:nul]), None, (
            "the line holds NUL characters: the file looks like UTF-16 without a byte-order "
            "mark; save it as UTF-8 or as Excel's \"Unicode Text\""
        )))
        raise CsvError(problems)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text), strict=True)
    need_database = (
        migration_type is MigrationType.REMOTE_OFFBOARDING or source_forest_initiated
    ) and not batch.target_databases
    warnings: list[str] = []
    rows: list[CsvRow] = []
    row_reader: _RowReader | None = None
    header_line = users = first_over_limit = 0
    limit = MAX_STAGED_ROWS if migration_type is MigrationType.STAGED else MAX_ROWS
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(CsvProblem(line, None, _csv_message(exc)))
            if row_reader is None:
                raise CsvError(problems) from None
            users += 1
            continue
        joined = "".join(cells)
        if not joined or joined.isspace():
            continue
        if row_reader is None:
            header_line = line
            positions = _read_header(
                line, cells, migration_type, need_database, allow_unknown_columns, problems,
                warnings,
            )
            if positions is None:
                raise CsvError(problems)
            staged = migration_type is MigrationType.STAGED
            row_reader = _RowReader(len(cells), positions, staged, batch, need_database, problems)
            continue
        users += 1
        if users == limit + 1:
            first_over_limit = line
        row = row_reader.read(line, cells)
        if row is not None:
            rows.append(row)
    if row_reader is None:
        problems.append(CsvProblem(1, None, (
            "the file is empty; its first line must name the columns, e.g. "
            f"{','.join(_REQUIRED[migration_type])}, and each further line give one user"
        )))
        raise CsvError(problems)
    if not users:
        problems.append(CsvProblem(header_line, None, (
            "the file has no users; add one line per user below the header"
        )))
    elif users > limit:
        problems.append(CsvProblem(first_over_limit, None, (
            f"the file has {users:,} users, more than the {limit:,} allowed in one "
            f"{_LABELS[migration_type]} batch; split them over several batches"
        )))
    if problems:
        raise CsvError(problems)
    return CsvFile(migration_type, row_reader.columns, rows, warnings)


def _csv_message(exc: csv.Error) -> str:
    """A csv module error in words that say how to fix it."""
    text = str(exc)
    if "unexpected end of data" in text:
        return (
            "a value opened with a double quote on this line is never closed; add the closing "
            "quote"
        )
    if "expected after" in text:
        return (
            "a quoted value goes on after its closing quote; quote the whole value and write "
            "each quote inside it twice (\"\")"
        )
    return f"the row cannot be read ({text})"
