"""Migration CSV files: the seeds' examples, every column rule, encodings, limits, messages."""

from __future__ import annotations

import codecs
import pickle
from collections.abc import Callable, Mapping

import pytest

from engine.csvfile import (
    MAX_CSV_BYTES,
    MAX_ROWS,
    MAX_STAGED_ROWS,
    CsvError,
    CsvProblem,
    MailboxType,
    MigrationType,
    RowSettings,
    parse_migration_csv,
)
from engine.defaults import UNLIMITED
from engine.errors import ConfigurationError, MigrationError

IMAP = MigrationType.IMAP
LOCAL = MigrationType.LOCAL_MOVE
ONBOARDING = MigrationType.REMOTE_ONBOARDING
OFFBOARDING = MigrationType.REMOTE_OFFBOARDING
CROSS_FOREST = MigrationType.CROSS_FOREST
STAGED = MigrationType.STAGED

SEED_PASSWORD = "Pa$$word1"

# Seed 000, one line per row where the seed's text runs them together.
SEED_000_PLAIN = b"""EmailAddress,UserName,Password
terrya@contoso.edu,terry.adams,1091990
annb@contoso.edu,ann.beebe,2111991
chrisc@contoso.edu,chris.cannon,3281986
"""
# The seed shows this one without its header line; the header is the one its rules require.
SEED_000_EXCHANGE_ROWS = b"""terrya@contoso.edu,contoso-students/administrator/terry.adams,Pa$$word1
annb@contoso.edu,contoso-students/administrator/ann.beebe,Pa$$word1
chrisc@contoso.edu,contoso-students/administrator/chris.cannon,Pa$$word1
"""
SEED_000_DOVECOT = b"""EmailAddress,UserName,Password
terrya@contoso.edu,administrator*terry.adams,Pa$$word1
annb@contoso.edu,administrator*ann.beebe,Pa$$word1
chrisc@contoso.edu,administrator*chris.cannon,Pa$$word1
"""

# Seed 003, without the "..." lines.
CROSS_FOREST_BATCH_1 = b"""EmailAddress,TargetDatabase,TargetArchiveDatabase
user1@contoso.com,EXCH-MBX-01,EXCH-MBX-A01
user2@contoso.com,,
user3@contoso.com,EXCH-MBX-01,
"""
ON_BOARDING_1 = b"""EmailAddress,MailboxType
user1@contoso.com,
user2@contoso.com,
user3@cloud.contoso.com,PrimaryAndArchive
user4@cloud.contoso.com,PrimaryAndArchive
"""

IMAP_HEADER = "EmailAddress,UserName,Password"


def lines(*rows: str, end: str = "\n") -> bytes:
    """UTF-8 CSV data from its lines."""
    return "".join(row + end for row in rows).encode()


def imap(*rows: str, header: str = IMAP_HEADER) -> bytes:
    """An IMAP CSV file: the header, then the rows."""
    return lines(header, *rows)


def failure(
    data: bytes,
    migration_type: MigrationType = IMAP,
    *,
    allow_unknown_columns: bool = False,
    batch_defaults: Mapping[str, object] | None = None,
    source_forest_initiated: bool = False,
) -> CsvError:
    """The CsvError that parsing ``data`` raises."""
    with pytest.raises(CsvError) as caught:
        parse_migration_csv(
            data,
            migration_type,
            allow_unknown_columns=allow_unknown_columns,
            batch_defaults=batch_defaults,
            source_forest_initiated=source_forest_initiated,
        )
    return caught.value


def where(error: CsvError) -> list[tuple[int, str | None]]:
    """(line, column) of each problem, in order."""
    return [(problem.line, problem.column) for problem in error.problems]


def only_message(
    data: bytes, migration_type: MigrationType = IMAP, *, allow_unknown_columns: bool = False
) -> str:
    """The rendered text of the one problem ``data`` has."""
    error = failure(data, migration_type, allow_unknown_columns=allow_unknown_columns)
    assert len(error.problems) == 1, str(error)
    return str(error.problems[0])


# --- the seeds ----------------------------------------------------------------------------


def test_seed_000_plain_logins() -> None:
    parsed = parse_migration_csv(SEED_000_PLAIN, IMAP)
    assert parsed.columns == ["EmailAddress", "UserName", "Password"]
    assert [
        (row.line, row.email, row.values["UserName"], row.values["Password"]) for row in parsed.rows
    ] == [
        (2, "terrya@contoso.edu", "terry.adams", "1091990"),
        (3, "annb@contoso.edu", "ann.beebe", "2111991"),
        (4, "chrisc@contoso.edu", "chris.cannon", "3281986"),
    ]
    assert parsed.warnings == []


def test_seed_000_exchange_super_user_logins() -> None:
    parsed = parse_migration_csv(IMAP_HEADER.encode() + b"\n" + SEED_000_EXCHANGE_ROWS, IMAP)
    assert [row.values["UserName"] for row in parsed.rows] == [
        "contoso-students/administrator/terry.adams",
        "contoso-students/administrator/ann.beebe",
        "contoso-students/administrator/chris.cannon",
    ]
    assert {row.values["Password"] for row in parsed.rows} == {SEED_PASSWORD}


def test_seed_000_exchange_rows_without_their_header_are_refused_without_echoing_them() -> None:
    assert only_message(SEED_000_EXCHANGE_ROWS) == (
        "line 1: the first line is a user, not a header; add a first line naming the columns, "
        "e.g. EmailAddress,UserName,Password"
    )


def test_seed_000_dovecot_super_user_logins() -> None:
    parsed = parse_migration_csv(SEED_000_DOVECOT, IMAP)
    assert [(row.email, row.values["UserName"]) for row in parsed.rows] == [
        ("terrya@contoso.edu", "administrator*terry.adams"),
        ("annb@contoso.edu", "administrator*ann.beebe"),
        ("chrisc@contoso.edu", "administrator*chris.cannon"),
    ]
    assert all(row.values["Password"] == SEED_PASSWORD for row in parsed.rows)


def test_seed_003_cross_forest_rows_override_the_batch_databases() -> None:
    # New-MigrationBatch ... -TargetDatabases @(EXCH-MBX-02,EXCH-MBX-03)
    #     -TargetArchiveDatabases @(EXCH-MBX-A02,EXCH-MBX-A03)
    batch = {
        "TargetDatabase": ["EXCH-MBX-02", "EXCH-MBX-03"],
        "TargetArchiveDatabase": ["EXCH-MBX-A02", "EXCH-MBX-A03"],
    }
    parsed = parse_migration_csv(CROSS_FOREST_BATCH_1, CROSS_FOREST, batch_defaults=batch)
    assert parsed.columns == ["EmailAddress", "TargetDatabase", "TargetArchiveDatabase"]
    user1, user2, user3 = (row.settings for row in parsed.rows)
    assert user1.target_databases == ("EXCH-MBX-01",)
    assert user1.target_archive_databases == ("EXCH-MBX-A01",)
    assert user2.target_databases == ("EXCH-MBX-02", "EXCH-MBX-03")
    assert user2.target_archive_databases == ("EXCH-MBX-A02", "EXCH-MBX-A03")
    assert user3.target_databases == ("EXCH-MBX-01",)
    assert user3.target_archive_databases == ("EXCH-MBX-A02", "EXCH-MBX-A03")
    # The batch moves primary and archive mailboxes: Exchange's default.
    assert {user.mailbox_type for user in (user1, user2, user3)} == {MailboxType.PRIMARY_AND_ARCHIVE}


def test_seed_003_cross_forest_from_the_source_forest_needs_a_database_per_user() -> None:
    batch = {"TargetDatabase": ["EXCH-MBX-02", "EXCH-MBX-03"]}
    parsed = parse_migration_csv(
        CROSS_FOREST_BATCH_1, CROSS_FOREST, batch_defaults=batch, source_forest_initiated=True
    )
    assert parsed.rows[1].settings.target_databases == ("EXCH-MBX-02", "EXCH-MBX-03")
    error = failure(CROSS_FOREST_BATCH_1, CROSS_FOREST, source_forest_initiated=True)
    assert str(error) == (
        "line 3, column TargetDatabase: the value is empty and the batch gives no target "
        "database; name this user's database, or give the batch -TargetDatabases"
    )


def test_seed_003_onboarding_rows_override_the_batch_mailbox_type() -> None:
    # New-MigrationBatch -Name OnBoarding1 ... -MailboxType ArchiveOnly -AutoStart
    parsed = parse_migration_csv(
        ON_BOARDING_1, ONBOARDING, batch_defaults={"MailboxType": "ArchiveOnly"}
    )
    assert [(row.email, row.settings.mailbox_type) for row in parsed.rows] == [
        ("user1@contoso.com", MailboxType.ARCHIVE_ONLY),
        ("user2@contoso.com", MailboxType.ARCHIVE_ONLY),
        ("user3@cloud.contoso.com", MailboxType.PRIMARY_AND_ARCHIVE),
        ("user4@cloud.contoso.com", MailboxType.PRIMARY_AND_ARCHIVE),
    ]
    # Rows that override nothing share the batch's settings object.
    assert parsed.rows[0].settings is parsed.rows[1].settings


# --- migration types ----------------------------------------------------------------------


def test_type_values_are_exchange_like_text() -> None:
    assert [kind.value for kind in MigrationType] == [
        "IMAP",
        "ExchangeLocalMove",
        "ExchangeRemoteMoveOnboarding",
        "ExchangeRemoteMoveOffboarding",
        "ExchangeCrossForestMove",
        "StagedExchange",
    ]
    parsed = parse_migration_csv(SEED_000_PLAIN, "IMAP")  # type: ignore[arg-type]
    assert parsed.migration_type is IMAP


def test_imap_user_root_is_optional_and_cells_are_verbatim() -> None:
    parsed = parse_migration_csv(
        imap(
            "terrya@contoso.edu,terry.adams, secret ,/users/terry.adams",
            header="EmailAddress,UserName,Password,UserRoot",
        ),
        IMAP,
    )
    assert parsed.rows[0].values == {
        "EmailAddress": "terrya@contoso.edu",
        "UserName": "terry.adams",
        "Password": " secret ",
        "UserRoot": "/users/terry.adams",
    }


def test_imap_batch_limits_reach_every_row() -> None:
    parsed = parse_migration_csv(
        SEED_000_PLAIN, IMAP, batch_defaults={"BadItemLimit": 10, "LargeItemLimit": "unlimited"}
    )
    limits = {(row.settings.bad_item_limit, row.settings.large_item_limit) for row in parsed.rows}
    assert limits == {(10, UNLIMITED)}


def test_local_move_columns() -> None:
    parsed = parse_migration_csv(
        lines(
            "EmailAddress,TargetDatabase,TargetArchiveDatabase,BadItemLimit,MailboxType",
            "user1@contoso.com,DB01,DB-A01,Unlimited,primaryonly",
            "user2@contoso.com,,, 5 ,",
        ),
        LOCAL,
        batch_defaults={"TargetDatabase": "DB02", "BadItemLimit": 1},
    )
    assert [row.settings for row in parsed.rows] == [
        RowSettings(
            bad_item_limit=UNLIMITED,
            mailbox_type=MailboxType.PRIMARY_ONLY,
            target_databases=("DB01",),
            target_archive_databases=("DB-A01",),
        ),
        RowSettings(bad_item_limit=5, target_databases=("DB02",)),
    ]


def test_local_moves_have_no_large_item_limit_column() -> None:
    message = only_message(lines("EmailAddress,LargeItemLimit", "user1@contoso.com,3"), LOCAL)
    assert message.startswith(
        "line 1: column 2, 'LargeItemLimit', is not a column of local move CSV files "
        "(LargeItemLimit is for other migration types); the columns are EmailAddress, "
        "TargetDatabase, TargetArchiveDatabase, BadItemLimit, MailboxType: delete it"
    )


def test_onboarding_limits() -> None:
    parsed = parse_migration_csv(
        lines(
            "EmailAddress,BadItemLimit,LargeItemLimit",
            "user1@contoso.com,0,2147483647",
            "user2@contoso.com,,",
        ),
        ONBOARDING,
        batch_defaults={"LargeItemLimit": UNLIMITED},
    )
    limits = [(row.settings.bad_item_limit, row.settings.large_item_limit) for row in parsed.rows]
    assert limits == [(0, 2_147_483_647), (0, UNLIMITED)]


def test_offboarding_needs_target_databases_from_the_file_or_the_batch() -> None:
    data = lines("EmailAddress,BadItemLimit", "user1@contoso.com,1")
    assert str(failure(data, OFFBOARDING)) == (
        "line 1, column TargetDatabase: the header has no TargetDatabase column; offboarding "
        "remote move CSV files need EmailAddress, TargetDatabase, or give the batch "
        "-TargetDatabases"
    )
    parsed = parse_migration_csv(data, OFFBOARDING, batch_defaults={"TargetDatabase": "MBX-02"})
    assert parsed.rows[0].settings.target_databases == ("MBX-02",)
    blank = lines("EmailAddress,TargetDatabase", "user1@contoso.com,DB1", "user2@contoso.com,")
    assert where(failure(blank, OFFBOARDING)) == [(3, "TargetDatabase")]


def test_cross_forest_from_the_target_forest_needs_no_target_database() -> None:
    parsed = parse_migration_csv(lines("EmailAddress", "user1@contoso.com"), CROSS_FOREST)
    assert parsed.rows[0].settings.target_databases == ()


def test_source_forest_flag_is_for_cross_forest_moves_only() -> None:
    with pytest.raises(ConfigurationError, match="cross-forest moves, not to IMAP migrations$"):
        parse_migration_csv(SEED_000_PLAIN, IMAP, source_forest_initiated=True)


def test_staged_columns() -> None:
    parsed = parse_migration_csv(
        lines(
            "EmailAddress,Password,ForceChangePassword",
            "user1@contoso.com,12345678,TRUE",
            "user2@contoso.com,,false",
            "user3@contoso.com,long enough,",
        ),
        STAGED,
    )
    assert [
        (row.values["Password"], row.settings.force_change_password) for row in parsed.rows
    ] == [("12345678", True), ("", False), ("long enough", None)]


def test_staged_password_needs_eight_characters_and_is_not_shown() -> None:
    error = failure(lines("EmailAddress,Password", "user1@contoso.com,Secr3t!"), STAGED)
    assert str(error) == (
        "line 2, column Password: the password is shorter than 8 characters; give a longer one, "
        "or leave the cell empty"
    )


def test_staged_files_have_no_user_name() -> None:
    error = failure(lines("EmailAddress,UserName", "user1@contoso.com,x"), STAGED)
    assert str(error).startswith(
        "line 1: column 2, 'UserName', is not a column of staged migration CSV files (UserName "
        "is for other migration types)"
    )


# --- the header ---------------------------------------------------------------------------


def test_header_names_match_in_any_case_and_report_the_canonical_spelling() -> None:
    data = imap("terrya@contoso.edu,terry,pw", header="emailaddress,USERNAME,passWord")
    parsed = parse_migration_csv(data, IMAP)
    assert parsed.columns == ["EmailAddress", "UserName", "Password"]
    assert list(parsed.rows[0].values) == ["EmailAddress", "UserName", "Password"]


@pytest.mark.parametrize(
    ("header", "column", "shown", "right"),
    [
        ("Email Address,UserName,Password", 1, "'Email Address'", "EmailAddress"),
        ("emailaddress ,UserName,Password", 1, "'emailaddress '", "EmailAddress"),
        ("EmailAddress,User_Name,Password", 2, "'User_Name'", "UserName"),
        ("EmailAddress,UserName,pass-word", 3, "'pass-word'", "Password"),
    ],
)
def test_header_names_with_spaces_or_punctuation_name_the_right_spelling(
    header: str, column: int, shown: str, right: str
) -> None:
    expected = (
        f"line 1: column {column} is headed {shown}: attribute names are one word, typed "
        f"exactly; use {right}"
    )
    data = imap("terrya@contoso.edu,terry,pw", header=header)
    assert only_message(data) == expected
    # Even when unknown columns are allowed: ignoring it would drop the column's values.
    assert only_message(data, allow_unknown_columns=True) == expected


def test_unknown_columns_are_refused() -> None:
    data = imap("terrya@contoso.edu,terry,pw,x", header=IMAP_HEADER + ",Notes")
    assert only_message(data) == (
        "line 1: column 4, 'Notes', is not a column of IMAP migration CSV files; the columns are "
        "EmailAddress, UserName, Password, UserRoot: delete it, or create the batch with "
        "-AllowUnknownColumnsInCsv $true to ignore it"
    )


def test_unknown_columns_are_ignored_with_a_warning_when_allowed() -> None:
    parsed = parse_migration_csv(
        imap("x,terrya@contoso.edu,terry,pw,", header="Notes," + IMAP_HEADER + ","),
        IMAP,
        allow_unknown_columns=True,
    )
    assert parsed.columns == ["EmailAddress", "UserName", "Password"]
    assert parsed.rows[0].values == {
        "EmailAddress": "terrya@contoso.edu",
        "UserName": "terry",
        "Password": "pw",
    }
    assert parsed.warnings == [
        "line 1: column 1, 'Notes', is not a column of IMAP migration CSV files; its values are "
        "ignored",
        "line 1: column 5 of the header has no name; its values are ignored",
    ]


def test_misspelt_columns_get_a_suggestion() -> None:
    data = imap("terrya@contoso.edu,terry,pw,x", header=IMAP_HEADER + ",UserRot")
    parsed = parse_migration_csv(data, IMAP, allow_unknown_columns=True)
    assert parsed.warnings == [
        "line 1: column 4, 'UserRot', is not a column of IMAP migration CSV files (did you mean "
        "UserRoot?); its values are ignored"
    ]
    error = failure(imap("terrya@contoso.edu,terry,pw", header="EmailAddress,UserName,Pasword"))
    assert [str(problem) for problem in error.problems] == [
        "line 1: column 3, 'Pasword', is not a column of IMAP migration CSV files (did you mean "
        "Password?); the columns are EmailAddress, UserName, Password, UserRoot: delete it, or "
        "create the batch with -AllowUnknownColumnsInCsv $true to ignore it",
        "line 1, column Password: the header has no Password column; IMAP migration CSV files "
        "need EmailAddress, UserName, Password",
    ]


def test_an_empty_header_cell_is_an_unknown_column() -> None:
    message = only_message(imap("terrya@contoso.edu,terry,pw,", header=IMAP_HEADER + ","))
    assert message.startswith("line 1: column 4 of the header has no name; the columns are")


def test_duplicate_header_columns() -> None:
    data = imap("a@contoso.com,terry,pw,b@contoso.com", header=IMAP_HEADER + ",EMAILADDRESS")
    assert only_message(data) == (
        "line 1, column EmailAddress: the header names this column twice (columns 1 and 4); "
        "delete one of them"
    )


def test_missing_required_columns_are_each_named() -> None:
    assert str(failure(imap("terrya@contoso.edu", header="EmailAddress"))) == (
        "line 1, column UserName: the header has no UserName column; IMAP migration CSV files "
        "need EmailAddress, UserName, Password\n"
        "line 1, column Password: the header has no Password column; IMAP migration CSV files "
        "need EmailAddress, UserName, Password"
    )


def test_semicolon_separated_files_say_to_use_commas() -> None:
    message = only_message(lines("EmailAddress;UserName;Password", "terrya@contoso.edu;terry;pw"))
    assert message.startswith(
        "line 1: the columns are separated by semicolons; separate them with commas"
    )


def test_empty_file_and_header_only_file() -> None:
    for data in (b"", b"\r\n\r\n", codecs.BOM_UTF8):
        assert only_message(data) == (
            "line 1: the file is empty; its first line must name the columns, e.g. "
            "EmailAddress,UserName,Password, and each further line give one user"
        )
    assert only_message(b"EmailAddress,UserName,Password\r\n,,\r\n") == (
        "line 1: the file has no users; add one line per user below the header"
    )


def test_blank_lines_before_the_header_are_skipped() -> None:
    parsed = parse_migration_csv(b"\n\n" + imap("terrya@contoso.edu,terry,pw"), IMAP)
    assert parsed.rows[0].line == 4


# --- values -------------------------------------------------------------------------------


def test_the_briefs_example_message() -> None:
    error = failure(imap("annb@contoso.edu,ann,pw", "terrya@,terry,pw"))
    message = "'terrya@' is not a valid e-mail address: the domain after @ is missing"
    assert error.problems == [CsvProblem(3, "EmailAddress", message)]
    assert str(error) == f"line 3, column EmailAddress: {message}"


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("terry adams@contoso.com", "it contains a space or line break; remove it"),
        ("terrya", "it has no @; write the whole address, e.g. terrya@contoso.com"),
        ("terrya@@contoso.com", "it has more than one @"),
        ("@contoso.com", "nothing comes before the @"),
        ("terrya@contoso", "'contoso' is not a domain name; write a full one such as contoso.com"),
        ("terrya@-contoso.com", "'-contoso.com' is not a domain name"),
        ("terrya@contoso..com", "'contoso..com' is not a domain name"),
        ("terrya@contoso.123", "'contoso.123' is not a domain name"),
        (".terrya@contoso.com", "the part before @ may only hold letters, digits, dots"),
        ("terry..a@contoso.com", "the part before @ may only hold letters, digits, dots"),
        ("térry@contoso.com", "it contains non-ASCII characters"),
        ("t" * 65 + "@contoso.com", "the part before @ is longer than 64 characters"),
        ("t@" + ".".join(label * 61 for label in "abcde") + ".com", "it is longer than 254"),
    ],
)
def test_invalid_email_addresses_say_why(address: str, reason: str) -> None:
    message = only_message(imap(f'"{address}",terry,pw'))
    assert message.startswith("line 2, column EmailAddress: ")
    assert "is not a valid e-mail address: " + reason in message


@pytest.mark.parametrize(
    "address",
    [
        "first.last+tag@sub.contoso.co.uk",
        "o'brien@contoso.com",
        "a_b-c@xn--bcher-kva.example",
        "  spaced@contoso.com ",
    ],
)
def test_valid_email_addresses(address: str) -> None:
    assert parse_migration_csv(imap(f"{address},terry,pw"), IMAP).rows[0].email == address.strip()


def test_empty_email_user_name_and_password() -> None:
    error = failure(imap(",terry,pw", "annb@contoso.edu, ,pw", "chrisc@contoso.edu,chris,"))
    assert str(error) == (
        "line 2, column EmailAddress: the value is empty; give the user's e-mail address\n"
        "line 3, column UserName: the value is empty; give the user's login on the IMAP server\n"
        "line 4, column Password: the value is empty; give the password of the account in "
        "UserName"
    )


def test_duplicate_addresses_name_both_lines_in_any_case() -> None:
    error = failure(
        imap(
            "terrya@contoso.edu,a,pw",
            "annb@contoso.edu,b,pw",
            "TerryA@Contoso.EDU,c,pw",
            "terrya@contoso.edu,d,pw",
        )
    )
    assert str(error) == (
        "line 4, column EmailAddress: TerryA@Contoso.EDU is already on line 2; a user may appear "
        "only once, so delete one of the two rows\n"
        "line 5, column EmailAddress: terrya@contoso.edu is already on line 2; a user may appear "
        "only once, so delete one of the two rows"
    )


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("Unlimited", UNLIMITED),
        ("unlimited", UNLIMITED),
        ("UNLIMITED", UNLIMITED),
        ("0", 0),
        ("007", 7),
        ("2147483647", 2_147_483_647),
    ],
)
def test_item_limits(cell: str, value: int) -> None:
    data = lines("EmailAddress,BadItemLimit,LargeItemLimit", f"u@contoso.com,{cell},{cell}")
    settings = parse_migration_csv(data, ONBOARDING).rows[0].settings
    assert (settings.bad_item_limit, settings.large_item_limit) == (value, value)


@pytest.mark.parametrize("cell", ["2147483648", "-1", "ten", "1.5", "+3", "٣"])
def test_invalid_item_limits(cell: str) -> None:
    data = lines("EmailAddress,BadItemLimit,LargeItemLimit", f"u@contoso.com,{cell},{cell}")
    assert [str(problem) for problem in failure(data, ONBOARDING).problems] == [
        f"line 2, column {name}: {cell!r} is not a {name} value; use a whole number from 0 to "
        "2147483647 or Unlimited"
        for name in ("BadItemLimit", "LargeItemLimit")
    ]


def test_mailbox_types_take_the_canonical_case() -> None:
    parsed = parse_migration_csv(
        lines(
            "EmailAddress,MailboxType",
            "a@contoso.com,primaryonly",
            "b@contoso.com,ARCHIVEONLY",
            "c@contoso.com,PrimaryAndArchive",
        ),
        LOCAL,
    )
    assert [str(row.settings.mailbox_type) for row in parsed.rows] == [
        "PrimaryOnly",
        "ArchiveOnly",
        "PrimaryAndArchive",
    ]
    assert only_message(lines("EmailAddress,MailboxType", "a@contoso.com,Primary"), LOCAL) == (
        "line 2, column MailboxType: 'Primary' is not a MailboxType value; use PrimaryOnly, "
        "ArchiveOnly or PrimaryAndArchive"
    )


def test_force_change_password_is_true_or_false() -> None:
    data = lines("EmailAddress,ForceChangePassword", "a@contoso.com,yes")
    assert only_message(data, STAGED) == (
        "line 2, column ForceChangePassword: 'yes' is not a ForceChangePassword value; use True "
        "or False"
    )


def test_blank_rows_are_skipped_and_value_less_cells_kept() -> None:
    data = (
        b"EmailAddress,TargetDatabase,TargetArchiveDatabase\n"
        b",,\n"
        b"\n"
        b"user2@contoso.com,,\n"
        b"  , ,\t\n"
        b"user3@contoso.com,DB1,\n"
    )
    parsed = parse_migration_csv(data, CROSS_FOREST)
    assert [(row.line, row.values) for row in parsed.rows] == [
        (4, {"EmailAddress": "user2@contoso.com", "TargetDatabase": "", "TargetArchiveDatabase": ""}),
        (6, {"EmailAddress": "user3@contoso.com", "TargetDatabase": "DB1", "TargetArchiveDatabase": ""}),
    ]


def test_rows_with_another_number_of_cells() -> None:
    error = failure(imap("terrya@contoso.edu,terry", "annb@contoso.edu,ann,pass,word"))
    assert str(error) == (
        "line 2: the row has 2 values but the header has 3 columns; put a value holding a comma "
        "in double quotes, and keep one comma per empty value\n"
        "line 3: the row has 4 values but the header has 3 columns; put a value holding a comma "
        "in double quotes, and keep one comma per empty value"
    )


# --- encodings, separators, line endings ---------------------------------------------------


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: text.encode("utf-8"),
        lambda text: codecs.BOM_UTF8 + text.encode("utf-8"),
        lambda text: codecs.BOM_UTF16_LE + text.encode("utf-16-le"),
        lambda text: codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
    ],
    ids=["utf-8", "utf-8-bom", "utf-16-le", "utf-16-be"],
)
def test_encodings(encode: Callable[[str], bytes]) -> None:
    text = "EmailAddress,UserName,Password\r\nterrya@contoso.edu,jörg.müller,pässwörd€\r\n"
    parsed = parse_migration_csv(encode(text), IMAP)
    assert parsed.columns == ["EmailAddress", "UserName", "Password"]
    values = parsed.rows[0].values
    assert (values["UserName"], values["Password"]) == ("jörg.müller", "pässwörd€")


def test_non_ascii_addresses_are_refused() -> None:
    assert only_message(imap("jörg@contoso.de,jörg.müller,pässwörd€")).startswith(
        "line 2, column EmailAddress: 'jörg@contoso.de' is not a valid e-mail address: it "
        "contains non-ASCII characters"
    )


def test_excel_unicode_text_is_tab_separated_utf_16() -> None:
    text = (
        "EmailAddress\tUserName\tPassword\tUserRoot\r\n"
        'terrya@contoso.edu\tterry, adams\t"pa\tss""word"\t/users/terry\r\n'
        "annb@contoso.edu\tann\tpw\t\r\n"
    )
    parsed = parse_migration_csv(text.encode("utf-16"), IMAP)
    assert [list(row.values.values()) for row in parsed.rows] == [
        ["terrya@contoso.edu", "terry, adams", 'pa\tss"word', "/users/terry"],
        ["annb@contoso.edu", "ann", "pw", ""],
    ]


def test_tabs_in_a_comma_separated_header_do_not_make_it_tab_separated() -> None:
    error = failure(b"EmailAddress\tUserName,Password\nterrya@contoso.edu\tterry,pw\n")
    assert str(error.problems[0]).startswith(
        "line 1: column 1, 'EmailAddress\\tUserName', is not a column"
    )


@pytest.mark.parametrize("end", ["\r\n", "\n", "\r"], ids=["crlf", "lf", "cr"])
def test_line_endings_and_quoted_fields(end: str) -> None:
    data = lines(
        IMAP_HEADER + ",Notes",
        'terrya@contoso.edu,"adams, terry","say ""hi""",',
        f'annb@contoso.edu,ann,pw2,"two{end}lines"',
        "chrisc@contoso.edu,chris,pw,",
        "",
        end=end,
    )
    parsed = parse_migration_csv(data, IMAP, allow_unknown_columns=True)
    assert [(row.line, row.values["UserName"], row.values["Password"]) for row in parsed.rows] == [
        (2, "adams, terry", 'say "hi"'),
        (3, "ann", "pw2"),
        (5, "chris", "pw"),
    ]


def test_mixed_line_endings_keep_editor_line_numbers() -> None:
    data = (
        b"EmailAddress,UserName,Password\r\n"
        b'bad,a,"x\ny"\r'
        b"worse,b,c\n"
        b"ok@contoso.com,d,e\r\n"
        b"badder,f,g"
    )
    assert where(failure(data)) == [(2, "Password"), (2, "EmailAddress"), (4, "EmailAddress"), (6, "EmailAddress")]


def test_a_multi_line_row_is_reported_at_its_first_line() -> None:
    data = imap(
        'terrya@contoso.edu,terry,"pass\nword\nhere"',
        '"chris\nc@contoso.edu",chris,pw',
        "x@,y,z",
    )
    assert where(failure(data)) == [(2, "Password"), (5, "EmailAddress"), (7, "EmailAddress")]


def test_invalid_bytes_are_reported_on_each_line_and_the_rest_still_checked() -> None:
    data = (
        b"EmailAddress,UserName,Password\r\n"
        b"terrya@contoso.edu,j\xf6rg,pw\r\n"
        b"annb@contoso.edu,ann,pw\r\n"
        b"chrisc@contoso.edu,m\xfcller \xfc,pw\r\n"
        b"nobody,x,pw\r\n"
    )
    error = failure(data)
    assert where(error) == [(2, None), (4, None), (5, "EmailAddress")]
    assert str(error.problems[0]) == (
        "line 2: the line holds bytes that are not valid UTF-8; save the file as UTF-8 (Excel: "
        "\"CSV UTF-8 (Comma delimited)\") or as Excel's \"Unicode Text\""
    )


def test_invalid_utf_16_is_reported_on_its_line() -> None:
    odd = (IMAP_HEADER + "\nterrya@contoso.edu,terry,pw\n").encode("utf-16") + b"\x00"
    error = failure(odd)
    # The odd byte decodes to U+FFFD, a row of one value.
    assert where(error) == [(3, None), (3, None)]
    assert str(error.problems[0]).startswith(
        "line 3: the line holds bytes that are not valid UTF-16"
    )
    lone_surrogate = (
        codecs.BOM_UTF16_LE
        + (IMAP_HEADER + "\na@contoso.com,").encode("utf-16-le")
        + b"\x00\xd8"
        + "x,pw\n".encode("utf-16-le")
    )
    assert str(failure(lone_surrogate)).startswith(
        "line 2: the line holds bytes that are not valid UTF-16"
    )


def test_utf_16_without_byte_order_mark_is_explained() -> None:
    assert only_message((IMAP_HEADER + "\n").encode("utf-16-le")) == (
        "line 1: the line holds NUL characters: the file looks like UTF-16 without a byte-order "
        "mark; save it as UTF-8 or as Excel's \"Unicode Text\""
    )


# --- control characters --------------------------------------------------------------------

_CONTROLS = {
    "cr": ("\r", "U+000D (carriage return)"),
    "lf": ("\n", "U+000A (line feed)"),
    "crlf": ("\r\n", "U+000D (carriage return)"),
    "nul": ("\x00", "U+0000 (NUL)"),
    "bel": ("\x07", "U+0007 (control character)"),
    "esc": ("\x1b", "U+001B (control character)"),
    "del": ("\x7f", "U+007F (DEL)"),
}
_IMAP_CELLS = {"EmailAddress": "terrya@contoso.edu", "UserName": "terry.adams", "Password": "Pa$$word1",
               "UserRoot": "/users/terry"}


@pytest.mark.parametrize("column", list(_IMAP_CELLS))
@pytest.mark.parametrize("control", list(_CONTROLS))
def test_control_characters_in_each_imap_cell_are_refused_with_line_and_column(column: str, control: str) -> None:
    char, name = _CONTROLS[control]
    cells = dict(_IMAP_CELLS)
    cells[column] = cells[column][:4] + char + "A1 DELETE INBOX"
    quoted = ",".join('"' + value + '"' for value in cells.values())
    data = lines(",".join(_IMAP_CELLS), "annb@contoso.edu,ann,pw,", quoted)
    error = failure(data)
    assert [str(problem) for problem in error.problems] == [
        f"line 3, column {column}: the value holds a control character, {name} at character 5; "
        "values sent to the IMAP server may not hold control characters"
        + (" (a tab is allowed in a password)" if column == "Password" else "") + ": remove it"
    ]
    assert "DELETE" not in str(error)


def test_every_control_character_of_a_file_is_reported_at_once() -> None:
    data = imap(
        '"terrya@contoso.edu","terry\r\nA1 DELETE INBOX","pw"',
        "annb@contoso.edu,ann\x01,pw\x00",
        "chrisc@contoso.edu,chris,pw",
        'x@,"y","z\n"',
    )
    assert where(failure(data)) == [(2, "UserName"), (4, "UserName"), (4, "Password"), (6, "Password"),
                                    (6, "EmailAddress")]


def test_a_tab_is_allowed_in_a_password_only() -> None:
    parsed = parse_migration_csv(imap('terrya@contoso.edu,terry,"pa\tss"'), IMAP)
    assert parsed.rows[0].values["Password"] == "pa\tss"
    assert where(failure(imap('terrya@contoso.edu,"ter\try",pw'))) == [(2, "UserName")]


def test_control_characters_in_move_columns_are_refused() -> None:
    data = lines("EmailAddress,TargetDatabase,BadItemLimit", "user1@contoso.com,DB\x0b1,5\x0c")
    assert where(failure(data, LOCAL)) == [(2, "TargetDatabase"), (2, "BadItemLimit")]


def test_broken_quoting() -> None:
    error = failure(
        imap(
            'terrya@contoso.edu,"terry"adams,pw',
            "annb@contoso.edu,ann,pw",
            'chrisc@contoso.edu,"chris,pw',
            "x@contoso.com,y,z",
        )
    )
    assert [str(problem) for problem in error.problems] == [
        "line 2: a quoted value goes on after its closing quote; quote the whole value and write "
        "each quote inside it twice (\"\")",
        "line 4: a value opened with a double quote on this line is never closed; add the "
        "closing quote",
    ]


# --- limits -------------------------------------------------------------------------------


def many_imap_rows(count: int) -> bytes:
    """An IMAP file with ``count`` distinct valid users."""
    return imap(*(f"user{n}@contoso.com,user{n},pw{n}" for n in range(count)))


def test_fifty_thousand_imap_rows_are_allowed_and_one_more_is_not() -> None:
    assert len(parse_migration_csv(many_imap_rows(MAX_ROWS), IMAP).rows) == 50_000
    assert only_message(many_imap_rows(MAX_ROWS + 1)) == (
        "line 50002: the file has 50,001 users, more than the 50,000 allowed in one IMAP "
        "migration batch; split them over several batches"
    )


def test_other_move_types_share_the_fifty_thousand_row_limit() -> None:
    data = lines("EmailAddress", *(f"user{n}@contoso.com" for n in range(MAX_ROWS + 1)))
    assert "the file has 50,001 users, more than the 50,000" in only_message(data, LOCAL)


def test_staged_files_take_a_thousand_rows() -> None:
    header = "EmailAddress,Password,ForceChangePassword"
    rows = [f"user{n}@contoso.com,,False" for n in range(MAX_STAGED_ROWS + 1)]
    assert len(parse_migration_csv(lines(header, *rows[:-1]), STAGED).rows) == 1_000
    assert only_message(lines(header, *rows), STAGED) == (
        "line 1002: the file has 1,001 users, more than the 1,000 allowed in one staged "
        "migration batch; split them over several batches"
    )


def test_row_limit_is_reported_beside_the_other_problems() -> None:
    rows = [f"user{n}@contoso.com" for n in range(MAX_STAGED_ROWS + 1)]
    rows[3] = "broken"
    error = failure(lines("EmailAddress", *rows), STAGED)
    assert where(error) == [(5, "EmailAddress"), (1002, None)]


def test_files_over_ten_megabytes_are_refused_before_reading() -> None:
    data = IMAP_HEADER.encode() + b"\n" + b"x" * MAX_CSV_BYTES
    error = failure(data)
    assert str(error) == (
        f"CSV data: the file is {len(data):,} bytes, more than the 10,485,760 bytes (10 MB) "
        "allowed; split the users over several batches"
    )
    assert error.problems[0].line == 0


# --- reporting ----------------------------------------------------------------------------


def test_every_problem_of_a_file_is_reported_at_once_in_line_order() -> None:
    data = (
        b"EmailAddress,UserName,Password,Notes\r\n"
        b"terrya@contoso.edu,terry,pw,\r\n"
        b"terrya@,ann,pw,\r\n"
        b"chrisc@contoso.edu,,,\r\n"
        b"\r\n"
        b"TERRYA@contoso.edu,t,pw,\r\n"
        b"only,two\r\n"
        b"d@contoso.edu,d\xe9,pw,\r\n"
    )
    error = failure(data)
    assert isinstance(error, ConfigurationError) and isinstance(error, MigrationError)
    assert where(error) == [
        (1, None),
        (3, "EmailAddress"),
        (4, "UserName"),
        (4, "Password"),
        (6, "EmailAddress"),
        (7, None),
        (8, None),
    ]
    assert str(error).splitlines() == [str(problem) for problem in error.problems]
    assert "line 6, column EmailAddress: TERRYA@contoso.edu is already on line 2" in str(error)


def test_problem_text_with_and_without_a_column_or_a_line() -> None:
    assert str(CsvProblem(4, None, "bad")) == "line 4: bad"
    assert str(CsvProblem(4, "UserName", "bad")) == "line 4, column UserName: bad"
    assert str(CsvProblem(0, None, "too big")) == "CSV data: too big"


def test_errors_survive_pickling_with_their_problems() -> None:
    error = failure(imap("terrya@,terry,pw"))
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.problems, str(copy)) == (CsvError, error.problems, str(error))


# --- passwords ----------------------------------------------------------------------------


def test_passwords_never_appear_in_reprs() -> None:
    parsed = parse_migration_csv(SEED_000_DOVECOT, IMAP)
    row = parsed.rows[0]
    shown = (repr(parsed), str(parsed), repr(row), str(row), repr(row.values), str(row.values))
    assert all(SEED_PASSWORD not in text for text in shown)
    assert "'Password': '********'" in repr(row)
    assert repr(parsed) == (
        "CsvFile(migration_type='IMAP', columns=['EmailAddress', 'UserName', 'Password'], "
        "rows=<3 rows>, warnings=[])"
    )
    assert row.values["Password"] == SEED_PASSWORD


def test_passwords_never_appear_in_errors() -> None:
    secret = "S3cret,pw"
    rows = [
        f'"{secret}",terry.adams,"{secret}"',  # the password typed into EmailAddress as well
        f'annb@contoso.edu,,"{secret}"',
        f'x@contoso.com,y,"{secret}",extra',
        f'"{secret}@contoso"," ","{secret}"',
    ]
    error = failure(imap(*rows))
    assert where(error) == [
        (2, "EmailAddress"),
        (3, "UserName"),
        (4, None),
        (5, "EmailAddress"),
        (5, "UserName"),
    ]
    assert secret not in str(error)
    assert "line 2, column EmailAddress: ******** is not a valid e-mail address" in str(error)
    assert "line 5, column EmailAddress: ******** is not a valid e-mail address" in str(error)
    staged = failure(
        lines("EmailAddress,Password,ForceChangePassword", "a@contoso.com,short,short"), STAGED
    )
    assert where(staged) == [(2, "Password"), (2, "ForceChangePassword")]
    assert "short" not in str(staged).replace("shorter", "")


# --- batch values -------------------------------------------------------------------------


def test_batch_values_are_checked() -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_migration_csv(
            SEED_000_PLAIN,
            IMAP,
            batch_defaults={
                "TargetDatabases": ["X"],
                "BadItemLimit": -2,
                "MailboxType": "Both",
                "ForceChangePassword": 1,
            },
        )
    assert str(caught.value) == (
        "invalid batch values: 'TargetDatabases' is not a per-user setting; use one of "
        "BadItemLimit, LargeItemLimit, MailboxType, TargetDatabase, TargetArchiveDatabase, "
        "ForceChangePassword; "
        "BadItemLimit -2: use a whole number from 0 to 2147483647, UNLIMITED (-1) or "
        "\"Unlimited\"; "
        "MailboxType 'Both': use PrimaryOnly, ArchiveOnly or PrimaryAndArchive; "
        "ForceChangePassword 1: use True or False"
    )
    assert not isinstance(caught.value, CsvError)


def test_batch_values_given_as_none_are_not_given() -> None:
    parsed = parse_migration_csv(
        SEED_000_PLAIN, IMAP, batch_defaults={"BadItemLimit": None, "MailboxType": None}
    )
    assert parsed.rows[0].settings == RowSettings()


def test_batch_values_in_every_accepted_form() -> None:
    parsed = parse_migration_csv(
        lines("EmailAddress", "a@contoso.com"),
        CROSS_FOREST,
        batch_defaults={
            "BadItemLimit": "Unlimited",
            "LargeItemLimit": 3,
            "MailboxType": MailboxType.ARCHIVE_ONLY,
            "TargetDatabase": ("DB1", " DB2 "),
            "TargetArchiveDatabase": "DB-A",
            "ForceChangePassword": "true",
        },
    )
    assert parsed.rows[0].settings == RowSettings(
        bad_item_limit=UNLIMITED,
        large_item_limit=3,
        mailbox_type=MailboxType.ARCHIVE_ONLY,
        target_databases=("DB1", "DB2"),
        target_archive_databases=("DB-A",),
        force_change_password=True,
    )
