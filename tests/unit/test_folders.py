"""Folder planning: paths, roles, target names, ExcludeFolders, UserRoot, create lists."""

from __future__ import annotations

import random
import unicodedata
from typing import cast

import pytest

from engine.errors import CommandRefused, ConfigurationError, MigrationError
from engine.folders import (
    ROLE_NAMES,
    SPECIAL_USE_ATTRIBUTES,
    ExcludePattern,
    FolderPlan,
    InvalidExcludePattern,
    MailboxPlan,
    Namespace,
    RemoteFolder,
    Role,
    SkipReason,
    UserRootNotFound,
    legal_names,
    listing_digest,
    parse_excludes,
    plan_mailbox,
    refused_for_missing_parent,
    refused_for_nesting,
    subscription_changes,
    target_name,
    target_path,
)
from engine.provision import Provisioned, provision
from engine.targets import Target

#: Dovecot/Gmail/Exchange style: no prefix, "/" delimiter.
SLASH = Namespace(prefix="", delimiter="/")
#: Courier/Cyrus style: everything below "INBOX.", "." delimiter.
DOTTED = Namespace(prefix="INBOX.", delimiter=".")


def slash(name: str, *flags: str) -> RemoteFolder:
    """A folder as a "/" server lists it."""
    return RemoteFolder(name=name, delimiter="/", flags=frozenset(flags))


def dotted(name: str, *flags: str) -> RemoteFolder:
    """A folder as a "." server lists it."""
    return RemoteFolder(name=name, delimiter=".", flags=frozenset(flags))


def targets(plan: MailboxPlan) -> dict[str, str]:
    """Source name -> target name for every folder the plan copies."""
    return {folder.source: folder.target for folder in plan.folders}


def folder(plan: MailboxPlan, source: str) -> FolderPlan:
    """The plan of one copied source folder."""
    return next(item for item in plan.folders if item.source == source)


# -- paths and target names ---------------------------------------------------------------


def test_slash_source_onto_prefixed_dotted_target() -> None:
    source = [slash("INBOX"), slash("Projects"), slash("Projects/2020"), slash("Work")]
    plan = plan_mailbox(source, SLASH, [dotted("INBOX")], DOTTED)

    assert targets(plan) == {
        "INBOX": "INBOX",
        "Projects": "INBOX.Projects",
        "Projects/2020": "INBOX.Projects.2020",
        "Work": "INBOX.Work",
    }
    assert [item.path for item in plan.folders] == [
        ("INBOX",),
        ("Projects",),
        ("Projects", "2020"),
        ("Work",),
    ]
    assert plan.create == ["INBOX.Projects", "INBOX.Projects.2020", "INBOX.Work"]
    assert plan.excluded == [] and plan.skipped == []
    assert all(item.note is None for item in plan.folders)


def test_prefixed_dotted_source_onto_slash_target() -> None:
    source = [dotted("INBOX"), dotted("INBOX.Projects"), dotted("INBOX.Projects.2020"), dotted("INBOX.Work")]
    plan = plan_mailbox(source, DOTTED, [slash("INBOX"), slash("Work")], SLASH)

    assert targets(plan) == {
        "INBOX": "INBOX",
        "INBOX.Projects": "Projects",
        "INBOX.Projects.2020": "Projects/2020",
        "INBOX.Work": "Work",
    }
    assert folder(plan, "INBOX.Projects.2020").path == ("Projects", "2020")
    assert plan.create == ["Projects", "Projects/2020"]  # Work exists already


def test_archive_lands_below_the_courier_prefix() -> None:
    source = [slash("INBOX"), slash("Archive"), slash("Archive/2020")]
    plan = plan_mailbox(source, SLASH, [dotted("INBOX")], DOTTED)

    assert folder(plan, "Archive").role is Role.ARCHIVE
    assert targets(plan)["Archive/2020"] == "INBOX.Archive.2020"
    assert plan.create == ["INBOX.Archive", "INBOX.Archive.2020"]


def test_children_of_the_inbox_stay_apart_from_top_level_folders() -> None:
    source = [slash("INBOX"), slash("INBOX/Sub"), slash("Sub")]

    onto_dotted = plan_mailbox(source, SLASH, [dotted("INBOX")], DOTTED)
    assert targets(onto_dotted) == {"INBOX": "INBOX", "INBOX/Sub": "INBOX.INBOX.Sub", "Sub": "INBOX.Sub"}
    assert folder(onto_dotted, "INBOX/Sub").path == ("INBOX", "Sub")
    assert onto_dotted.create == ["INBOX.INBOX.Sub", "INBOX.Sub"]  # the server makes INBOX.INBOX

    onto_slash = plan_mailbox(source, SLASH, [slash("INBOX")], SLASH)
    assert targets(onto_slash) == {"INBOX": "INBOX", "INBOX/Sub": "INBOX/Sub", "Sub": "Sub"}
    assert onto_slash.create == ["INBOX/Sub", "Sub"]  # never INBOX itself


@pytest.mark.parametrize("name", ["inbox", "Inbox", "INBOX"])
def test_inbox_is_recognised_in_any_case(name: str) -> None:
    plan = plan_mailbox([slash(name), slash(f"{name}/Sub")], SLASH, [slash("INBOX")], SLASH)

    assert folder(plan, name).path == ("INBOX",)
    assert folder(plan, name).role is Role.INBOX
    assert targets(plan) == {name: "INBOX", f"{name}/Sub": "INBOX/Sub"}
    assert plan.create == ["INBOX/Sub"]


def test_inbox_in_another_case_on_a_dotted_source_is_the_inbox() -> None:
    plan = plan_mailbox([dotted("inbox"), dotted("inbox.Work")], DOTTED, [], SLASH)

    assert targets(plan) == {"inbox": "INBOX", "inbox.Work": "Work"}


def test_non_ascii_names_pass_through_as_unicode() -> None:
    source = [
        slash("INBOX"),
        slash("日本語"),
        slash("日本語/サブ"),
        slash("Entwürfe"),
        slash("Éléments envoyés"),
    ]
    plan = plan_mailbox(source, SLASH, [dotted("INBOX"), dotted("INBOX.Drafts", "\\Drafts")], DOTTED)

    assert targets(plan) == {
        "INBOX": "INBOX",
        "Entwürfe": "INBOX.Drafts",
        "Éléments envoyés": "INBOX.Éléments envoyés",
        "日本語": "INBOX.日本語",
        "日本語/サブ": "INBOX.日本語.サブ",
    }
    assert folder(plan, "Entwürfe").role is Role.DRAFTS
    assert folder(plan, "Éléments envoyés").role is Role.SENT
    assert plan.create == ["INBOX.Éléments envoyés", "INBOX.日本語", "INBOX.日本語.サブ"]
    assert plan.special_use == {"INBOX.Éléments envoyés": "\\Sent"}


def test_decomposed_unicode_names_are_recognised() -> None:
    decomposed = unicodedata.normalize("NFD", "Gelöschte Elemente")
    plan = plan_mailbox([slash(decomposed)], SLASH, [slash("Trash", "\\Trash")], SLASH)

    assert folder(plan, decomposed).role is Role.TRASH
    assert targets(plan) == {decomposed: "Trash"}


def test_outside_the_personal_namespace_is_skipped() -> None:
    source = [dotted("INBOX"), dotted("INBOX.Work"), dotted("#shared.sales"), dotted("Public.News")]
    plan = plan_mailbox(source, DOTTED, [], SLASH)

    assert targets(plan) == {"INBOX": "INBOX", "INBOX.Work": "Work"}
    assert plan.skipped == [
        ("#shared.sales", SkipReason.OUTSIDE_NAMESPACE),
        ("Public.News", SkipReason.OUTSIDE_NAMESPACE),
    ]
    assert plan.skipped[0][1] == "outside the personal namespace"


def test_prefix_is_matched_with_inbox_in_any_case() -> None:
    plan = plan_mailbox([dotted("inbox.Work")], DOTTED, [], SLASH)

    assert targets(plan) == {"inbox.Work": "Work"}


def test_flat_target_joins_levels_in_one_name() -> None:
    plan = plan_mailbox(
        [slash("INBOX"), slash("Projects/2020")], SLASH, [], Namespace(prefix="", delimiter=None)
    )

    assert targets(plan) == {"INBOX": "INBOX", "Projects/2020": "Projects/2020"}
    assert plan.create == ["Projects/2020"]  # no hierarchy parents on a flat server


def test_a_folder_listed_twice_is_planned_once() -> None:
    plan = plan_mailbox([slash("Work"), slash("Work", "\\HasNoChildren"), slash("Work")], SLASH, [], DOTTED)

    assert targets(plan) == {"Work": "INBOX.Work"}
    assert plan.create == ["INBOX.Work"]


def test_output_is_deterministic_inbox_first_and_case_insensitive() -> None:
    source = [
        slash("zeta"),
        slash("Alpha"),
        slash("alpha/beta"),
        slash("INBOX/Sub"),
        slash("Beta"),
        slash("INBOX"),
        slash("Old", "\\Noselect"),
        slash("Old/1"),
    ]
    plans = []
    for seed in range(5):
        shuffled = list(source)
        random.Random(seed).shuffle(shuffled)
        plans.append(plan_mailbox(shuffled, SLASH, [], SLASH))

    assert all(plan == plans[0] for plan in plans)
    assert [item.source for item in plans[0].folders] == [
        "INBOX",
        "INBOX/Sub",
        "Alpha",
        "alpha/beta",
        "Beta",
        "Old/1",
        "zeta",
    ]
    # "alpha" and "Old" are only hierarchy: the server makes them when it creates their children
    assert plans[0].create == ["INBOX/Sub", "Alpha", "alpha/beta", "Beta", "Old/1", "zeta"]


# -- special folders ----------------------------------------------------------------------


def test_special_use_attributes_decide_before_names() -> None:
    source = [
        slash("INBOX"),
        slash("[Gmail]", "\\Noselect", "\\HasChildren"),
        slash("[Gmail]/Sent Mail", "\\Sent"),
        slash("[Gmail]/Bin", "\\Trash"),
        slash("[Gmail]/Important", "\\Important"),
        slash("Archive", "\\Junk"),  # the attribute wins over the name
    ]
    target = [slash("INBOX"), slash("Sent", "\\Sent"), slash("Trash", "\\Trash"), slash("Junk", "\\Junk")]
    plan = plan_mailbox(source, SLASH, target, SLASH)

    assert targets(plan) == {
        "INBOX": "INBOX",
        "[Gmail]/Sent Mail": "Sent",
        "[Gmail]/Bin": "Trash",
        "[Gmail]/Important": "[Gmail]/Important",
        "Archive": "Junk",
    }
    assert folder(plan, "[Gmail]/Sent Mail").role is Role.SENT
    assert folder(plan, "Archive").role is Role.JUNK
    assert folder(plan, "[Gmail]/Important").role is None
    assert plan.skipped == [("[Gmail]", SkipReason.NOSELECT)]
    assert plan.create == ["[Gmail]/Important"]  # the server makes "[Gmail]" as hierarchy


def test_attributes_are_compared_case_insensitively_and_xlist_is_understood() -> None:
    source = [slash("Outgoing", "\\SENT"), slash("Bulk", "\\Spam"), slash("Hidden", "\\NOSELECT")]
    plan = plan_mailbox(source, SLASH, [slash("Sent", "\\sent"), slash("Spam", "\\JUNK")], SLASH)

    assert targets(plan) == {"Outgoing": "Sent", "Bulk": "Spam"}
    assert folder(plan, "Bulk").role is Role.JUNK
    assert plan.skipped == [("Hidden", SkipReason.NOSELECT)]


@pytest.mark.parametrize(
    ("name", "role", "new_target"),
    [
        ("Sent Messages", Role.SENT, "Sent"),
        ("sent items", Role.SENT, "Sent"),
        ("Gesendete Objekte", Role.SENT, "Sent"),
        ("Objets envoyés", Role.SENT, "Sent"),
        ("Elementos enviados", Role.SENT, "Sent"),
        ("Posta inviata", Role.SENT, "Sent"),
        ("Verzonden items", Role.SENT, "Sent"),
        ("Skickat", Role.SENT, "Sent"),
        ("Deleted Messages", Role.TRASH, "Trash"),
        ("Papierkorb", Role.TRASH, "Trash"),
        ("Corbeille", Role.TRASH, "Trash"),
        ("Éléments supprimés", Role.TRASH, "Trash"),
        ("Papelera", Role.TRASH, "Trash"),
        ("Cestino", Role.TRASH, "Trash"),
        ("Prullenbak", Role.TRASH, "Trash"),
        ("Papperskorgen", Role.TRASH, "Trash"),
        ("Junk E-mail", Role.JUNK, "Junk"),
        ("Bulk Mail", Role.JUNK, "Junk"),
        ("SPAM", Role.JUNK, "Junk"),
        ("Courrier indésirable", Role.JUNK, "Junk"),
        ("Correo no deseado", Role.JUNK, "Junk"),
        ("Brouillons", Role.DRAFTS, "Drafts"),
        ("Borradores", Role.DRAFTS, "Drafts"),
        ("Bozze", Role.DRAFTS, "Drafts"),
        ("Concepten", Role.DRAFTS, "Drafts"),
        ("Utkast", Role.DRAFTS, "Drafts"),
        ("Archives", Role.ARCHIVE, "Archive"),
        ("Postausgang", Role.OUTBOX, "Outbox"),
        ("Kalender", Role.CALENDAR, "Calendar"),
        ("Kontakte", Role.CONTACTS, "Contacts"),
        ("Aufgaben", Role.TASKS, "Tasks"),
        ("Notizen", Role.NOTES, "Notes"),
        ("Journal", Role.JOURNAL, "Journal"),
    ],
)
def test_names_reveal_roles_and_special_folders_keep_their_names(name: str, role: Role, new_target: str) -> None:
    """Without a target folder carrying the role, the folder keeps its own name (it is never
    renamed to the usual English one) and is created with the role's attribute."""
    usual = [slash(new_target)] if new_target != name else []  # only a name: not the role's folder
    plan = plan_mailbox([slash("INBOX"), slash(name)], SLASH, [slash("INBOX"), *usual], SLASH)

    assert folder(plan, name).role is role
    assert targets(plan)[name] == name
    assert plan.create == [name]
    assert plan.special_use == ({name: SPECIAL_USE_ATTRIBUTES[role]} if role in SPECIAL_USE_ATTRIBUTES else {})

    if role in SPECIAL_USE_ATTRIBUTES:
        marked = [slash(f"My {new_target}", SPECIAL_USE_ATTRIBUTES[role])]
        assert targets(plan_mailbox([slash(name)], SLASH, marked, SLASH)) == {name: f"My {new_target}"}


def test_names_give_roles_to_top_level_folders_only() -> None:
    plan = plan_mailbox([slash("Projects"), slash("Projects/Sent")], SLASH, [slash("Sent", "\\Sent")], SLASH)

    assert folder(plan, "Projects/Sent").role is None
    assert targets(plan)["Projects/Sent"] == "Projects/Sent"


def test_names_on_a_prefixed_source_are_top_level_below_the_prefix() -> None:
    source = [dotted("INBOX"), dotted("INBOX.Sent Items")]
    plan = plan_mailbox(source, DOTTED, [slash("Sent", "\\Sent")], SLASH)

    assert folder(plan, "INBOX.Sent Items").role is Role.SENT
    assert targets(plan)["INBOX.Sent Items"] == "Sent"


def test_target_folders_with_only_a_role_name_are_not_special() -> None:
    """A target folder named like a role but without the attribute is an ordinary folder: the
    source's special folders keep their own names (created with the attribute) beside it."""
    target = [slash("INBOX"), slash("Gesendete Objekte"), slash("Gelöschte Elemente"), slash("Junk-E-Mail")]
    source = [dotted("INBOX"), dotted("INBOX.Sent"), dotted("INBOX.Trash"), dotted("INBOX.Spam")]
    plan = plan_mailbox(source, DOTTED, target, SLASH)

    assert targets(plan) == {"INBOX": "INBOX", "INBOX.Sent": "Sent", "INBOX.Trash": "Trash", "INBOX.Spam": "Spam"}
    assert plan.create == ["Sent", "Spam", "Trash"]
    assert plan.special_use == {"Sent": "\\Sent", "Spam": "\\Junk", "Trash": "\\Trash"}


def test_target_attribute_beats_target_names() -> None:
    target = [slash("Sent"), slash("Outgoing", "\\Sent")]
    plan = plan_mailbox([slash("Sent Items")], SLASH, target, SLASH)

    assert targets(plan) == {"Sent Items": "Outgoing"}


def test_target_attribute_folder_that_cannot_be_selected_is_ignored() -> None:
    target = [slash("Outgoing", "\\Sent", "\\Noselect"), slash("Sent Items")]
    plan = plan_mailbox([slash("Sent")], SLASH, target, SLASH)

    assert targets(plan) == {"Sent": "Sent"}
    assert plan.special_use == {"Sent": "\\Sent"}


def test_no_target_folder_is_chosen_by_name_alone() -> None:
    target = [slash("Gesendet"), slash("Sent Items"), slash("Sent")]
    plan = plan_mailbox([dotted("INBOX.Gesendete Objekte")], DOTTED, target, SLASH)

    assert targets(plan) == {"INBOX.Gesendete Objekte": "Gesendete Objekte"}


def test_target_role_names_are_read_below_its_prefix() -> None:
    target = [dotted("INBOX"), dotted("INBOX.Sent Items"), dotted("INBOX.Deleted Items", "\\Trash")]
    plan = plan_mailbox([slash("Sent"), slash("Trash")], SLASH, target, DOTTED)

    assert targets(plan) == {"Sent": "INBOX.Sent", "Trash": "INBOX.Deleted Items"}
    assert plan.create == ["INBOX.Sent"]


def test_children_of_special_folders_follow_their_parent() -> None:
    source = [slash("INBOX"), slash("Sent Items"), slash("Sent Items/2019"), slash("Sent Items/2019/Q1")]
    plan = plan_mailbox(source, SLASH, [slash("INBOX"), slash("Sent", "\\Sent")], SLASH)

    assert targets(plan) == {
        "INBOX": "INBOX",
        "Sent Items": "Sent",
        "Sent Items/2019": "Sent/2019",
        "Sent Items/2019/Q1": "Sent/2019/Q1",
    }
    assert folder(plan, "Sent Items/2019").role is None
    assert plan.create == ["Sent/2019", "Sent/2019/Q1"]


def test_children_follow_a_special_folder_onto_a_prefixed_target() -> None:
    source = [slash("Gelöschte Elemente"), slash("Gelöschte Elemente/Alt")]
    plan = plan_mailbox(source, SLASH, [dotted("INBOX"), dotted("INBOX.Trash", "\\Trash")], DOTTED)

    assert targets(plan) == {
        "Gelöschte Elemente": "INBOX.Trash",
        "Gelöschte Elemente/Alt": "INBOX.Trash.Alt",
    }
    assert plan.create == ["INBOX.Trash.Alt"]


def test_two_folders_of_one_role_never_merge() -> None:
    """Only the role's folder (the one marked, else the first in the name table) maps onto the
    target's special-use folder; the other keeps its name, and so do its subfolders."""
    source = [
        slash("INBOX"),
        slash("Sent Messages", "\\Sent"),
        slash("Sent Messages/2019"),
        slash("Sent Items"),
        slash("Sent Items/2019"),
        slash("Sent Items/2020"),
    ]
    plan = plan_mailbox(source, SLASH, [dotted("INBOX"), dotted("INBOX.Sent", "\\Sent")], DOTTED)

    assert targets(plan) == {
        "INBOX": "INBOX",
        "Sent Messages": "INBOX.Sent",
        "Sent Messages/2019": "INBOX.Sent.2019",
        "Sent Items": "INBOX.Sent Items",
        "Sent Items/2019": "INBOX.Sent Items.2019",
        "Sent Items/2020": "INBOX.Sent Items.2020",
    }
    assert folder(plan, "Sent Messages").role is Role.SENT
    assert folder(plan, "Sent Items").role is None  # an ordinary folder now
    assert all(item.note is None for item in plan.folders)
    assert plan.special_use == {}  # the role's folder lands in the target's; no other gets \\Sent

    unmarked = [slash("Sent Messages"), slash("Sent Items"), slash("Trash"), slash("Deleted Items")]
    onto_bare = plan_mailbox(unmarked, SLASH, [], SLASH)
    assert targets(onto_bare) == {name.name: name.name for name in unmarked}
    assert onto_bare.special_use == {"Sent Items": "\\Sent", "Trash": "\\Trash"}  # first in ROLE_NAMES
    assert folder(onto_bare, "Sent Messages").role is None and folder(onto_bare, "Deleted Items").role is None


def test_the_plan_is_stable_once_the_role_folder_carries_its_attribute() -> None:
    """Run 1 creates "Sent Items" with \\Sent; run 2 finds it by the attribute: same targets."""
    source = [slash("INBOX"), slash("Sent Items"), slash("Sent Messages")]
    first = plan_mailbox(source, SLASH, [dotted("INBOX")], DOTTED)
    assert targets(first) == {"INBOX": "INBOX", "Sent Items": "INBOX.Sent Items", "Sent Messages": "INBOX.Sent Messages"}
    assert first.special_use == {"INBOX.Sent Items": "\\Sent"}

    created = [dotted("INBOX"), dotted("INBOX.Sent Items", "\\Sent"), dotted("INBOX.Sent Messages")]
    second = plan_mailbox(source, SLASH, created, DOTTED)
    assert targets(second) == targets(first)
    assert second.create == [] and second.special_use == {}


def test_an_ordinary_folder_named_like_the_target_role_folder_is_numbered() -> None:
    source = [slash("Sent", "\\Sent"), slash("Outgoing")]
    plan = plan_mailbox(source, SLASH, [slash("Outgoing", "\\Sent")], SLASH)

    assert targets(plan) == {"Sent": "Outgoing", "Outgoing": "Outgoing (2)"}


def test_two_roles_never_share_one_target_folder() -> None:
    source = [slash("Sent", "\\Sent"), slash("Archive", "\\Archive")]
    plan = plan_mailbox(source, SLASH, [slash("All", "\\Sent", "\\Archive")], SLASH)

    assert targets(plan) == {"Sent": "All", "Archive": "Archive"}


def test_all_mail_keeps_its_path_unless_the_target_has_one() -> None:
    source = [slash("[Gmail]", "\\Noselect"), slash("[Gmail]/All Mail", "\\All")]

    without = plan_mailbox(source, SLASH, [], DOTTED)
    assert targets(without) == {"[Gmail]/All Mail": "INBOX.[Gmail].All Mail"}
    assert folder(without, "[Gmail]/All Mail").role is Role.ALL

    gmail_target = [slash("[Google Mail]", "\\Noselect"), slash("[Google Mail]/Alle Nachrichten", "\\All")]
    gmail = plan_mailbox(source, SLASH, gmail_target, SLASH)
    assert targets(gmail) == {"[Gmail]/All Mail": "[Google Mail]/Alle Nachrichten"}
    assert gmail.create == []


def test_role_name_table_is_unambiguous() -> None:
    seen: dict[str, Role] = {}
    for role, names in ROLE_NAMES.items():
        for name in names:
            key = unicodedata.normalize("NFD", name).casefold()
            assert seen.setdefault(key, role) is role, f"{name!r} is listed for two roles"
    assert set(SPECIAL_USE_ATTRIBUTES) == {
        Role.SENT, Role.TRASH, Role.JUNK, Role.DRAFTS, Role.ARCHIVE, Role.ALL, Role.FLAGGED
    }


# -- UserRoot -----------------------------------------------------------------------------

COURIER_SHARED = [
    dotted("INBOX"),
    dotted("INBOX.Admin stuff"),
    dotted("INBOX.users", "\\Noselect"),
    dotted("INBOX.users.terry"),
    dotted("INBOX.users.terry.Sent"),
    dotted("INBOX.users.terry.Projects"),
    dotted("INBOX.users.terry.Projects.2020"),
    dotted("INBOX.users.anna"),
    dotted("INBOX.users.anna.Sent"),
]


@pytest.mark.parametrize(
    "user_root", ["/users/terry", "users/terry", "users.terry", "INBOX.users.terry", "/users/terry/"]
)
def test_user_root_becomes_the_inbox(user_root: str) -> None:
    target = [slash("INBOX"), slash("Sent", "\\Sent")]
    plan = plan_mailbox(COURIER_SHARED, DOTTED, target, SLASH, user_root=user_root)

    assert targets(plan) == {
        "INBOX.users.terry": "INBOX",
        "INBOX.users.terry.Projects": "Projects",
        "INBOX.users.terry.Projects.2020": "Projects/2020",
        "INBOX.users.terry.Sent": "Sent",
    }
    assert folder(plan, "INBOX.users.terry").path == ("INBOX",)
    assert folder(plan, "INBOX.users.terry").role is Role.INBOX
    assert folder(plan, "INBOX.users.terry.Sent").role is Role.SENT
    assert folder(plan, "INBOX.users.terry.Projects.2020").path == ("Projects", "2020")
    assert plan.create == ["Projects", "Projects/2020"]
    assert plan.skipped == [
        ("INBOX", SkipReason.OUTSIDE_USER_ROOT),
        ("INBOX.Admin stuff", SkipReason.OUTSIDE_USER_ROOT),
        ("INBOX.users", SkipReason.OUTSIDE_USER_ROOT),
        ("INBOX.users.anna", SkipReason.OUTSIDE_USER_ROOT),
        ("INBOX.users.anna.Sent", SkipReason.OUTSIDE_USER_ROOT),
    ]
    assert plan.skipped[0][1] == "outside UserRoot"


def test_user_root_with_a_dot_in_a_name_on_a_slash_source() -> None:
    source = [
        slash("INBOX"),
        slash("users/terry.adams"),
        slash("users/terry.adams/Drafts"),
        slash("users/terry"),
    ]
    plan = plan_mailbox(source, SLASH, [], DOTTED, user_root="/users/terry.adams")

    assert targets(plan) == {"users/terry.adams": "INBOX", "users/terry.adams/Drafts": "INBOX.Drafts"}


def test_user_root_written_with_slashes_on_a_dotted_source_splits_dots_too() -> None:
    source = [dotted("INBOX"), dotted("INBOX.users.terry.adams"), dotted("INBOX.users.terry.adams.Work")]
    plan = plan_mailbox(source, DOTTED, [], SLASH, user_root="/users/terry.adams")

    assert targets(plan) == {"INBOX.users.terry.adams": "INBOX", "INBOX.users.terry.adams.Work": "Work"}


def test_user_root_whose_folder_is_not_listed_still_roots_its_children() -> None:
    plan = plan_mailbox([dotted("INBOX.users.terry.Work")], DOTTED, [], SLASH, user_root="users/terry")

    assert targets(plan) == {"INBOX.users.terry.Work": "Work"}
    assert plan.create == ["Work"]


@pytest.mark.parametrize("user_root", ["/users/nobody", "users/Terry", "users/ter"])
def test_missing_user_root_is_an_error(user_root: str) -> None:
    with pytest.raises(UserRootNotFound) as raised:
        plan_mailbox(COURIER_SHARED, DOTTED, [], SLASH, user_root=user_root)

    assert isinstance(raised.value, ConfigurationError)
    assert raised.value.user_root == user_root
    assert f"UserRoot {user_root!r} matches no folder on the source" in str(raised.value)


@pytest.mark.parametrize("user_root", [None, "", "/"])
def test_blank_user_root_means_the_whole_mailbox(user_root: str | None) -> None:
    plan = plan_mailbox([slash("INBOX"), slash("Work")], SLASH, [], SLASH, user_root=user_root)

    assert targets(plan) == {"INBOX": "INBOX", "Work": "Work"}


def test_excludes_are_relative_to_the_user_root() -> None:
    plan = plan_mailbox(
        COURIER_SHARED, DOTTED, [], SLASH, user_root="users/terry", exclude=["Projects/*", "#Inbox#"]
    )

    assert targets(plan) == {"INBOX.users.terry.Sent": "Sent"}
    assert plan.excluded == [
        ("INBOX.users.terry", "#Inbox#"),
        ("INBOX.users.terry.Projects", "Projects/*"),
        ("INBOX.users.terry.Projects.2020", "Projects/*"),
    ]


# -- ExcludeFolders -----------------------------------------------------------------------

MAILBOX = [
    slash("INBOX"),
    slash("INBOX/Sub"),
    slash("Sub"),
    slash("Sent"),
    slash("Sent/2019"),
    slash("Sent Items"),
    slash("Deleted Items"),
    slash("Deleted Items/Old"),
    slash("Junk Mail"),
    slash("Projects"),
    slash("Projects/FY2010"),
    slash("Projects/FY2010/Q1"),
    slash("Notes"),
    slash("#Notes#"),
    slash("Papierkorb/Alt"),
]


def excluded_by(patterns: list[str], source: list[RemoteFolder] = MAILBOX) -> dict[str, str]:
    """Source name -> pattern for each folder the patterns exclude."""
    plan = plan_mailbox(source, SLASH, [], SLASH, exclude=patterns)
    copied = {item.source for item in plan.folders}
    excluded = dict(plan.excluded)
    assert copied | set(excluded) == {item.name for item in source}  # nothing is lost
    return excluded


def test_plain_names_exclude_case_insensitively() -> None:
    assert excluded_by(["deleted items", "JUNK MAIL"]) == {
        "Deleted Items": "deleted items",
        "Junk Mail": "JUNK MAIL",
    }


def test_a_name_alone_keeps_its_children_and_their_parent_as_hierarchy() -> None:
    plan = plan_mailbox(MAILBOX, SLASH, [slash("INBOX")], DOTTED, exclude=["Projects"])

    assert plan.excluded == [("Projects", "Projects")]
    assert targets(plan)["Projects/FY2010"] == "INBOX.Projects.FY2010"
    assert "INBOX.Projects" not in plan.create  # the server makes it as the child's parent
    assert plan.create.index("INBOX.Projects.FY2010") < plan.create.index("INBOX.Projects.FY2010.Q1")


def test_slash_star_excludes_the_folder_and_everything_below() -> None:
    assert excluded_by(["projects/*"]) == {
        "Projects": "projects/*",
        "Projects/FY2010": "projects/*",
        "Projects/FY2010/Q1": "projects/*",
    }
    assert excluded_by(["Projects/FY2010/*"]) == {
        "Projects/FY2010": "Projects/FY2010/*",
        "Projects/FY2010/Q1": "Projects/FY2010/*",
    }
    assert excluded_by(["Projects/FY2010"]) == {"Projects/FY2010": "Projects/FY2010"}


def test_sent_items_token_addresses_every_sent_folder() -> None:
    assert excluded_by(["#SentItems#"]) == {"Sent": "#SentItems#", "Sent Items": "#SentItems#"}
    assert excluded_by(["#SentItems#/*"]) == {
        "Sent": "#SentItems#/*",
        "Sent/2019": "#SentItems#/*",
        "Sent Items": "#SentItems#/*",
    }


def test_deleted_items_token_finds_localized_and_attribute_folders() -> None:
    source = [slash("Papierkorb"), slash("Papierkorb/Alt"), slash("Rubbish", "\\Trash"), slash("Work")]

    assert excluded_by(["#DeletedItems#/*"], source) == {
        "Papierkorb": "#DeletedItems#/*",
        "Papierkorb/Alt": "#DeletedItems#/*",
        "Rubbish": "#DeletedItems#/*",
    }


def test_inbox_token_and_its_subfolders() -> None:
    assert excluded_by(["#Inbox#"]) == {"INBOX": "#Inbox#"}
    assert excluded_by(["#inbox#/*"]) == {"INBOX": "#inbox#/*", "INBOX/Sub": "#inbox#/*"}
    assert excluded_by(["#Inbox#/sub"]) == {"INBOX/Sub": "#Inbox#/sub"}


def test_inbox_token_on_a_courier_source_excludes_only_the_inbox() -> None:
    source = [dotted("INBOX"), dotted("INBOX.Sub")]
    plan = plan_mailbox(source, DOTTED, [], SLASH, exclude=["#Inbox#/*"])

    assert plan.excluded == [("INBOX", "#Inbox#/*")]
    assert targets(plan) == {"INBOX.Sub": "Sub"}


def test_token_below_a_well_known_folder_with_star() -> None:
    assert excluded_by(["#DeletedItems#/Old/*"]) == {"Deleted Items/Old": "#DeletedItems#/Old/*"}


def test_root_token_star_excludes_everything() -> None:
    plan = plan_mailbox(MAILBOX, SLASH, [], SLASH, exclude=["#Root#/*"])

    assert plan.folders == [] and plan.create == []
    assert len(plan.excluded) == len(MAILBOX)
    assert excluded_by(["#Root#/Projects"]) == {"Projects": "#Root#/Projects"}


def test_escaped_hash_names_a_literal_folder_not_a_token() -> None:
    assert excluded_by(["\\#Notes\\#"]) == {"#Notes#": "\\#Notes\\#"}
    assert excluded_by(["#Notes#"]) == {"Notes": "#Notes#"}


def test_tokens_for_every_role_exist() -> None:
    source = [
        slash("Outbox"),
        slash("Calendar"),
        slash("Contacts"),
        slash("Tasks"),
        slash("Journal"),
        slash("Drafts"),
        slash("Archive"),
        slash("Junk"),
        slash("All", "\\All"),
    ]
    tokens = [
        "#Outbox#",
        "#Calendar#",
        "#Contacts#",
        "#Tasks#",
        "#Journal#",
        "#Drafts#",
        "#Archive#",
        "#JunkEmail#",
        "#AllItems#",
    ]

    assert excluded_by(tokens, source) == dict(zip((item.name for item in source), tokens, strict=True))


def test_first_matching_pattern_is_reported() -> None:
    assert excluded_by(["Projects/*", "Projects/FY2010"])["Projects/FY2010"] == "Projects/*"


def test_an_excluded_unselectable_folder_is_reported_as_excluded() -> None:
    source = [slash("Old", "\\Noselect"), slash("Old/1")]

    assert excluded_by(["Old"], source) == {"Old": "Old"}


def test_patterns_match_non_ascii_names_caselessly() -> None:
    source = [slash("ÉTÉ"), slash("été/Photos"), slash("日本語"), slash("日本語/サブ")]

    assert excluded_by(["été", "日本語/サブ"], source) == {
        "ÉTÉ": "été",
        "日本語/サブ": "日本語/サブ",
    }


def test_patterns_may_use_the_source_delimiter_and_prefix() -> None:
    source = [
        dotted("INBOX"),
        dotted("INBOX.Trash"),
        dotted("INBOX.Archive"),
        dotted("INBOX.Archive.2019"),
        dotted("INBOX.Archive.2020"),
        dotted("INBOX.Keep"),
        dotted("INBOX.Keep.Me"),
    ]
    patterns = ["INBOX.Trash", "Archive.2019", "Keep.*", "Archive/2020"]
    plan = plan_mailbox(source, DOTTED, [], SLASH, exclude=patterns)

    assert plan.excluded == [
        ("INBOX.Archive.2019", "Archive.2019"),
        ("INBOX.Archive.2020", "Archive/2020"),
        ("INBOX.Keep", "Keep.*"),
        ("INBOX.Keep.Me", "Keep.*"),
        ("INBOX.Trash", "INBOX.Trash"),
    ]
    assert targets(plan) == {"INBOX": "INBOX", "INBOX.Archive": "Archive"}


def test_dot_star_is_refused_where_dot_is_not_the_delimiter() -> None:
    with pytest.raises(InvalidExcludePattern, match=r"'Projects\.\*'.*write '/\*'"):
        plan_mailbox(MAILBOX, SLASH, [], SLASH, exclude=["Projects.*"])


def test_escaped_star_names_a_literal_folder() -> None:
    source = [slash("x"), slash("x/*"), slash("x/y")]

    assert excluded_by(["x/\\*"], source) == {"x/*": "x/\\*"}


def test_slash_in_a_name_on_a_dotted_source_can_be_excluded() -> None:
    source = [dotted("INBOX.AC/DC"), dotted("INBOX.Other")]
    plan = plan_mailbox(source, DOTTED, [], DOTTED, exclude=["ac/dc"])

    assert plan.excluded == [("INBOX.AC/DC", "ac/dc")]


def test_parse_excludes_reads_every_form() -> None:
    parsed = parse_excludes(
        [
            "Projects/*",
            "Deleted Items",
            "#SentItems#/*",
            "#sentitems#",
            "\\#Notes\\#",
            "#Root#/*",
            "#Inbox#/A/B",
            "/Lead",
            "a\\b\\*",
            "Keep.*",
            "x/\\*",
            "100\\%",
        ]
    )

    assert parsed.patterns == (
        ExcludePattern("Projects/*", None, "Projects", "/"),
        ExcludePattern("Deleted Items", None, "Deleted Items", None),
        ExcludePattern("#SentItems#/*", Role.SENT, "", "/"),
        ExcludePattern("#sentitems#", Role.SENT, "", None),
        ExcludePattern("\\#Notes\\#", None, "#Notes#", None),
        ExcludePattern("#Root#/*", None, "", "/"),
        ExcludePattern("#Inbox#/A/B", Role.INBOX, "A/B", None),
        ExcludePattern("/Lead", None, "Lead", None),
        ExcludePattern("a\\b\\*", None, "a\\b*", None),
        ExcludePattern("Keep.*", None, "Keep", "."),
        ExcludePattern("x/\\*", None, "x/*", None),
        ExcludePattern("100\\%", None, "100%", None),
    )
    assert [pattern.recursive for pattern in parsed.patterns[:3]] == [True, False, True]


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("", "it is empty"),
        ("   ", "it is empty"),
        ("*", "wildcards are not allowed"),
        ("Pro*", "wildcards are not allowed"),
        ("Projects/*/Q1", "wildcards are not allowed"),
        ("Projects/%", "wildcards are not allowed"),
        ("#Root#/*/x", "wildcards are not allowed"),
        ("#Foo#", "unknown well-known folder #Foo#"),
        ("#Inbox", "never closed"),
        ("#Inbox#Sub", "must be followed by '/'"),
        ("#Root#", "#Root# alone names no folder"),
        ("/*", "it names no folder"),
        ("/", "it names no folder"),
        ("Projects//FY2010", "empty folder name"),
        ("Projects/", "empty folder name"),
        ("#Inbox#/", "empty folder name"),
    ],
)
def test_bad_patterns_are_refused_with_their_text(pattern: str, reason: str) -> None:
    with pytest.raises(InvalidExcludePattern) as raised:
        parse_excludes(["Good", pattern])

    assert raised.value.pattern == pattern
    assert str(raised.value).startswith(f"invalid ExcludeFolders pattern {pattern!r}: ")
    assert reason in str(raised.value)
    assert isinstance(raised.value, ConfigurationError) and isinstance(raised.value, MigrationError)


def test_plan_mailbox_refuses_bad_patterns_too() -> None:
    with pytest.raises(InvalidExcludePattern, match="'Pro\\*'"):
        plan_mailbox(MAILBOX, SLASH, [], SLASH, exclude=["Pro*"])


# -- names that cannot be kept ------------------------------------------------------------


def test_target_delimiter_inside_a_name_is_replaced_and_noted() -> None:
    source = [slash("INBOX"), slash("Archive"), slash("Archive/Dr. Jones"), slash("Archive/Dr. Jones/2020")]
    plan = plan_mailbox(source, SLASH, [dotted("INBOX"), dotted("INBOX.Archive")], DOTTED)

    assert targets(plan) == {
        "INBOX": "INBOX",
        "Archive": "INBOX.Archive",
        "Archive/Dr. Jones": "INBOX.Archive.Dr_ Jones",
        "Archive/Dr. Jones/2020": "INBOX.Archive.Dr_ Jones.2020",
    }
    assert folder(plan, "Archive/Dr. Jones").note == (
        "'Dr. Jones' contains the target's hierarchy delimiter '.'; named 'Dr_ Jones'"
    )
    assert folder(plan, "Archive/Dr. Jones/2020").note is None
    assert plan.create == ["INBOX.Archive.Dr_ Jones", "INBOX.Archive.Dr_ Jones.2020"]


def test_slash_inside_a_dotted_name_is_replaced_on_a_slash_target() -> None:
    plan = plan_mailbox([dotted("INBOX.AC/DC"), dotted("INBOX.AC/DC.Live")], DOTTED, [], SLASH)

    assert targets(plan) == {"INBOX.AC/DC": "AC_DC", "INBOX.AC/DC.Live": "AC_DC/Live"}
    assert folder(plan, "INBOX.AC/DC").note == (
        "'AC/DC' contains the target's hierarchy delimiter '/'; named 'AC_DC'"
    )
    assert plan.create == ["AC_DC", "AC_DC/Live"]


def test_unlisted_parent_with_a_delimiter_is_replaced_in_the_child() -> None:
    plan = plan_mailbox([slash("Dr. Who/Season 1")], SLASH, [], DOTTED)

    assert targets(plan) == {"Dr. Who/Season 1": "INBOX.Dr_ Who.Season 1"}
    assert folder(plan, "Dr. Who/Season 1").note == (
        "'Dr. Who' contains the target's hierarchy delimiter '.'; named 'Dr_ Who'"
    )
    assert plan.create == ["INBOX.Dr_ Who.Season 1"]


def test_replacement_collision_gets_a_numbered_name_and_children_follow() -> None:
    source = [slash("Dr. Jones"), slash("Dr_ Jones"), slash("Dr_ Jones/Letters"), slash("Dr.Jones")]
    plan = plan_mailbox(source, SLASH, [], DOTTED)

    assert targets(plan) == {
        "Dr. Jones": "INBOX.Dr_ Jones",
        "Dr_ Jones": "INBOX.Dr_ Jones (2)",
        "Dr_ Jones/Letters": "INBOX.Dr_ Jones (2).Letters",
        "Dr.Jones": "INBOX.Dr_Jones",
    }
    assert folder(plan, "Dr_ Jones").note == (
        "'INBOX.Dr_ Jones' is already the target of source folder 'Dr. Jones'; named 'INBOX.Dr_ Jones (2)'"
    )
    assert folder(plan, "Dr_ Jones/Letters").note is None


def test_third_colliding_folder_gets_the_next_number() -> None:
    source = [slash("a.b"), slash("a_b"), slash("a_b (2)"), slash("a/b")]
    plan = plan_mailbox(source, SLASH, [], Namespace(prefix="", delimiter="."))

    assert targets(plan)["a.b"] == "a_b"
    assert targets(plan)["a_b"] == "a_b (2)"
    assert targets(plan)["a_b (2)"] == "a_b (2) (2)"
    assert targets(plan)["a/b"] == "a.b"


def test_replacement_and_collision_notes_are_combined() -> None:
    plan = plan_mailbox([slash("x_y"), slash("x.y")], SLASH, [], DOTTED)

    assert targets(plan) == {"x.y": "INBOX.x_y", "x_y": "INBOX.x_y (2)"}
    assert folder(plan, "x_y").note == (
        "'INBOX.x_y' is already the target of source folder 'x.y'; named 'INBOX.x_y (2)'"
    )


def test_folder_named_inbox_below_a_prefix_does_not_merge_into_the_inbox() -> None:
    source = [dotted("INBOX"), dotted("INBOX.Inbox"), dotted("INBOX.Inbox.Sub")]
    plan = plan_mailbox(source, DOTTED, [slash("INBOX")], SLASH)

    assert targets(plan) == {"INBOX": "INBOX", "INBOX.Inbox": "Inbox (2)", "INBOX.Inbox.Sub": "Inbox (2)/Sub"}
    assert folder(plan, "INBOX.Inbox").note == (
        "'Inbox' is already the target of source folder 'INBOX'; named 'Inbox (2)'"
    )
    assert plan.create == ["Inbox (2)", "Inbox (2)/Sub"]

    onto_courier = plan_mailbox(source, DOTTED, [dotted("INBOX")], DOTTED)
    assert targets(onto_courier)["INBOX.Inbox"] == "INBOX.Inbox"
    assert folder(onto_courier, "INBOX.Inbox").note is None


def test_inbox_is_reserved_even_when_the_source_does_not_list_it() -> None:
    plan = plan_mailbox([dotted("INBOX.inbox")], DOTTED, [], SLASH)

    assert targets(plan) == {"INBOX.inbox": "inbox (2)"}
    assert folder(plan, "INBOX.inbox").note == "'inbox' is already the target of the inbox; named 'inbox (2)'"


def test_ordinary_folder_never_takes_a_role_folder_target() -> None:
    source = [slash("Outgoing"), slash("Sent")]
    plan = plan_mailbox(source, SLASH, [slash("Outgoing", "\\Sent")], SLASH)

    assert targets(plan) == {"Outgoing": "Outgoing (2)", "Sent": "Outgoing"}
    assert folder(plan, "Outgoing").note == (
        "'Outgoing' is already the target of source folder 'Sent'; named 'Outgoing (2)'"
    )


def test_existing_target_folders_are_not_collisions() -> None:
    target = [dotted("INBOX.Work"), dotted("INBOX.Dr_ Jones")]
    plan = plan_mailbox([slash("Work"), slash("Dr. Jones")], SLASH, target, DOTTED)

    assert targets(plan) == {"Dr. Jones": "INBOX.Dr_ Jones", "Work": "INBOX.Work"}
    assert plan.create == []


def test_excluding_a_folder_does_not_rename_the_others() -> None:
    source = [slash("Dr. Jones"), slash("Dr_ Jones")]
    plan = plan_mailbox(source, SLASH, [], DOTTED, exclude=["Dr. Jones"])

    assert targets(plan) == {"Dr_ Jones": "INBOX.Dr_ Jones (2)"}


# -- unselectable folders and the create list ---------------------------------------------


def test_noselect_parents_are_skipped_and_not_created_but_children_are() -> None:
    source = [
        slash("INBOX"),
        slash("Old", "\\Noselect", "\\HasChildren"),
        slash("Old/2019"),
        slash("Gone", "\\NonExistent", "\\Noselect"),
        slash("Gone/Child"),
    ]
    plan = plan_mailbox(source, SLASH, [dotted("INBOX")], DOTTED)

    assert targets(plan) == {"INBOX": "INBOX", "Old/2019": "INBOX.Old.2019", "Gone/Child": "INBOX.Gone.Child"}
    assert plan.skipped == [("Gone", SkipReason.NONEXISTENT), ("Old", SkipReason.NOSELECT)]
    assert plan.create == ["INBOX.Gone.Child", "INBOX.Old.2019"]  # the server makes the parents


def test_create_skips_existing_folders_and_respects_inbox_case() -> None:
    source = [slash("INBOX"), slash("INBOX/Sub"), slash("Work"), slash("Work/A"), slash("work")]
    target = [slash("inbox"), slash("inbox/Sub"), slash("Work")]
    plan = plan_mailbox(source, SLASH, target, SLASH)

    assert plan.create == ["work", "Work/A"]  # other names compare exactly


def test_only_copied_folders_are_created_never_their_parents() -> None:
    target = [slash("A", "\\Noselect"), slash("B", "\\NonExistent"), slash("C/1", "\\NonExistent")]
    plan = plan_mailbox([slash("A/1"), slash("B/1"), slash("C/1")], SLASH, target, SLASH)

    assert plan.create == ["A/1", "B/1", "C/1"]


def test_a_copied_folder_whose_target_is_only_hierarchy_is_created() -> None:
    plan = plan_mailbox([slash("A"), slash("A/1")], SLASH, [slash("A", "\\Noselect"), slash("A/1")], SLASH)

    assert plan.create == ["A"]  # a level the server made for A/1 does not hold mail yet


def test_a_plan_stored_as_text_comes_back_only_for_the_same_listing() -> None:
    source = [
        RemoteFolder("INBOX", "/", frozenset()),
        RemoteFolder("Sent Items", "/", frozenset({"\\Sent"})),
        RemoteFolder("Projekte/Überblick", "/", frozenset()),
        RemoteFolder("Junk", "/", frozenset()),
    ]
    ns = Namespace("", "/")
    plan = plan_mailbox(source, ns, [], Namespace("INBOX.", "."), exclude=("Junk",))
    listing = listing_digest(source, ns, exclude=("Junk",))
    again = MailboxPlan.from_json(plan.to_json(listing), listing)
    assert again is not None
    assert again.folders == plan.folders and again.excluded == plan.excluded and again.skipped == plan.skipped
    assert again.create == []  # created when the plan was made
    # \\Marked and \\HasChildren say nothing about the plan; a new attribute, folder or option does
    marked = [RemoteFolder(f.name, f.delimiter, f.flags | {"\\Marked", "\\HasNoChildren"}) for f in source]
    assert listing_digest(marked, ns, exclude=("Junk",)) == listing
    assert listing_digest([*source, RemoteFolder("New", "/", frozenset())], ns, exclude=("Junk",)) != listing
    assert listing_digest(source, ns) != listing
    assert listing_digest(source, ns, exclude=("Junk",), user_root="Projekte") != listing
    assert MailboxPlan.from_json(plan.to_json(listing), listing_digest(source, ns)) is None
    assert MailboxPlan.from_json("{not json", listing) is None


def test_a_plan_with_folders_that_could_not_be_created_is_made_again() -> None:
    ns = Namespace("", "/")
    plan = plan_mailbox([slash("INBOX"), slash("Work")], ns, [], ns)
    failed = MailboxPlan(plan.folders[:1], [], [], [], failed=[("Work", "cannot be created")])
    listing = listing_digest([slash("INBOX"), slash("Work")], ns)
    text = failed.to_json(listing)

    assert MailboxPlan.from_json(text, listing) is None  # the next run plans again and retries
    kept = MailboxPlan.from_json(text)  # read for its names whatever it was made from
    assert kept is not None and kept.failed == [("Work", "cannot be created")]


def test_the_source_subscriptions_are_part_of_the_listing_digest() -> None:
    source = [slash("INBOX"), slash("A"), slash("B")]
    ns = Namespace("", "/")

    assert listing_digest(source, ns, subscribed=["INBOX", "A"]) == listing_digest(source, ns, subscribed={"A", "INBOX"})
    assert listing_digest(source, ns, subscribed=["INBOX", "A"]) != listing_digest(source, ns, subscribed=["INBOX"])
    assert listing_digest(source, ns, subscribed=[]) == listing_digest(source, ns)


# -- names the target refuses -------------------------------------------------------------


def test_target_paths_and_names_are_inverse() -> None:
    assert target_path("INBOX.Archive.2020", DOTTED) == ("Archive", "2020")
    assert target_name(("Archive", "2020"), DOTTED) == "INBOX.Archive.2020"
    assert target_path("inbox", DOTTED) == ("INBOX",) and target_name(("INBOX",), DOTTED) == "INBOX"
    assert target_path("Other/x", DOTTED) is None
    assert target_name(("a", "b"), Namespace("", None)) == "a/b"


@pytest.mark.parametrize(
    ("path", "existing", "expected"),
    [
        (("a.b",), 0, [("a_b",)]),
        (("Projects", "x%y*z"), 1, [("Projects", "x_y_z")]),
        (('say "hi"', "back\\slash"), 0, [("say _hi_", "back_slash")]),
        (("tab\there\x7f",), 0, [("tab_here_",)]),
        (("a.b", "c.d"), 1, [("a.b", "c_d")]),  # an existing level is never changed
        (("Plain",), 0, []),
    ],
)
def test_refused_characters_become_underscores_in_new_levels(
    path: tuple[str, ...], existing: int, expected: list[tuple[str, ...]]
) -> None:
    assert [candidate for candidate, _ in legal_names(path, existing=existing, cannot_nest=False)] == expected


def test_levels_below_a_folder_that_cannot_have_children_become_one_sibling() -> None:
    def names(path: tuple[str, ...], existing: int) -> list[tuple[str, ...]]:
        return [candidate for candidate, _ in legal_names(path, existing=existing, cannot_nest=True)]

    assert names(("Projects", "2024"), 1) == [("Projects_2024",)]
    assert names(("A", "B", "C"), 2) == [("A", "B_C")]  # a sibling of the childless A/B, inside A
    assert names(("A", "B", "C", "D"), 2) == [("A", "B_C_D")]  # deeper levels joined the same way
    assert names(("P", "C"), 0) == [("P_C",)]  # no level exists: one top-level folder
    assert names(("Top",), 0) == []  # nothing to join: the rule has no other name
    # step 1, then step 2 applied to its result
    assert names(("Projects", "a/b"), 1) == [("Projects", "a_b"), ("Projects_a_b",)]


def test_a_rule_name_another_folder_lands_in_is_numbered() -> None:
    taken = {("a_b",), ("a_b (2)",)}
    [(candidate, why)] = legal_names(("a.b",), existing=0, cannot_nest=False, taken=taken)

    assert candidate == ("a_b (3)",)
    assert "numbered" in why


@pytest.mark.parametrize(
    ("answer", "nesting", "parent"),
    [
        ("create failed: [CANNOT] Mailbox doesn't allow inferior mailboxes", True, False),
        ("NO [NOINFERIORS] no children here", True, False),
        ("create failed: [CANNOT] Character not allowed in mailbox name: '.'", True, False),
        ("NO [NONEXISTENT] Parent folder does not exist", False, True),
        ("NO Parent mailbox doesn't exist", False, True),
        ("NO [ALREADYEXISTS] Mailbox exists", False, False),
        ("NO Permission denied", False, False),
    ],
)
def test_what_a_refused_create_says(answer: str, nesting: bool, parent: bool) -> None:
    assert refused_for_nesting(answer) is nesting
    assert refused_for_missing_parent(answer) is parent


# -- subscriptions ------------------------------------------------------------------------


def test_subscriptions_of_copied_folders_become_the_sources() -> None:
    source = [slash("INBOX"), slash("A"), slash("B"), slash("P", "\\Noselect"), slash("P/C"), slash("Junk")]
    plan = plan_mailbox(source, SLASH, [dotted("INBOX")], DOTTED, exclude=["Junk"])
    subscribe, unsubscribe = subscription_changes(
        plan.folders,
        ["inbox", "A", "P/C", "P", "Junk"],  # LSUB's spelling of INBOX may differ
        SLASH,
        ["INBOX.B", "INBOX.Unrelated", "INBOX.Junk"],  # B was subscribed by the target itself
        DOTTED,
    )

    assert subscribe == ["INBOX", "INBOX.A", "INBOX.P.C"]
    assert unsubscribe == ["INBOX.B"]  # folders the mailbox does not copy are left alone


def test_parents_created_as_hierarchy_are_never_subscribed() -> None:
    plan = plan_mailbox([slash("P/C")], SLASH, [], SLASH)
    subscribe, unsubscribe = subscription_changes(plan.folders, ["P/C", "P"], SLASH, ["P"], SLASH, hierarchy=["P"])

    assert (subscribe, unsubscribe) == (["P/C"], ["P"])


# -- provisioning against an in-memory target ---------------------------------------------


class FakeTarget:
    """A target with Dovecot mbox's rules: '.' delimiter, '/' refused, a folder holding mail
    cannot have children, parents are made as directories (\\Noselect) by CREATE; or, with
    ``needs_parents``, one whose CREATE wants the parent to exist (its folders can have children)."""

    description = "fake"

    def __init__(self, *, refuse: frozenset[str] = frozenset(), needs_parents: bool = False) -> None:
        self.files: set[str] = set()  # selectable folders (mbox files)
        self.dirs: set[str] = set()  # hierarchy only
        self.subscribed: set[str] = {"INBOX"}
        self.refuse = refuse
        self.needs_parents = needs_parents
        self.created: list[tuple[str, str | None]] = []

    def create_folder(self, name: str, special_use: str | None = None) -> None:
        if name in self.refuse:
            raise CommandRefused(f"CREATE {name!r}: NO [CANNOT] policy")
        if "/" in name:
            raise CommandRefused(f"CREATE {name!r}: NO [CANNOT] Character not allowed in mailbox name: '/'")
        parts = name.split(".")
        for depth in range(1, len(parts)):
            parent = ".".join(parts[:depth])
            if parent in self.files and not self.needs_parents:  # that server's folders can have children
                raise CommandRefused(f"CREATE {name!r}: NO [CANNOT] Mailbox doesn't allow inferior mailboxes")
            if parent not in self.dirs | self.files and self.needs_parents:
                raise CommandRefused(f"CREATE {name!r}: NO [NONEXISTENT] Parent mailbox doesn't exist")
        self.dirs.update(".".join(parts[:depth]) for depth in range(1, len(parts)))
        self.files.add(name)
        self.created.append((name, special_use))

    def subscriptions(self) -> set[str]:
        return set(self.subscribed)

    def subscribe(self, name: str, subscribed: bool) -> None:
        (self.subscribed.add if subscribed else self.subscribed.discard)(name)


MBOX = Namespace("", ".")


def provisioned(source: list[RemoteFolder], fake: FakeTarget, subscribed: list[str], **kw: object) -> Provisioned:
    plan = plan_mailbox(source, SLASH, [], MBOX)
    return provision(plan, cast(Target, fake), [], MBOX, subscribed, SLASH, **kw)  # type: ignore[arg-type]


def test_a_nested_folder_under_a_folder_with_mail_becomes_its_sibling() -> None:
    fake = FakeTarget()
    made = provisioned([slash("INBOX"), slash("Projects"), slash("Projects/2024"), slash("Projects/2024/Q1")], fake, [])

    assert {f.source: f.target for f in made.plan.folders} == {
        "INBOX": "INBOX", "Projects": "Projects", "Projects/2024": "Projects_2024", "Projects/2024/Q1": "Projects_2024_Q1",
    }
    note = next(f.note for f in made.plan.folders if f.source == "Projects/2024")
    assert note is not None and "refused 'Projects.2024'" in note and "named 'Projects_2024'" in note
    assert made.errors == [] and made.plan.failed == []


def test_a_refused_character_is_replaced_and_the_children_follow() -> None:
    fake = FakeTarget()
    made = provisioned([slash("AC.DC"), slash("AC.DC/Live"), slash("x/y", "\\Noselect"), slash("x/y/z")], fake, [])
    # '.' is the target's delimiter: replaced when planning; a '/' inside a level on a '.' source is
    # refused by this target and replaced by the rule
    assert {f.source: f.target for f in made.plan.folders}["AC.DC"] == "AC_DC"
    assert {f.source: f.target for f in made.plan.folders}["x/y/z"] == "x.y.z"


def test_a_folder_that_cannot_be_created_is_a_folder_error_and_its_children_are_tried() -> None:
    fake = FakeTarget(refuse=frozenset({"Blocked"}))
    made = provisioned([slash("INBOX"), slash("Blocked"), slash("Blocked/Child"), slash("Work")], fake, ["Work", "Blocked"])

    assert {f.source: f.target for f in made.plan.folders} == {"INBOX": "INBOX", "Blocked/Child": "Blocked.Child", "Work": "Work"}
    assert made.plan.failed and made.plan.failed[0][0] == "Blocked"
    [error] = made.errors
    assert error.startswith("folder 'Blocked': cannot be created on the target") and "policy" in error
    assert fake.subscribed == {"Work"}  # INBOX unsubscribed: the source does not subscribe it


def test_parents_are_created_only_where_the_server_asks_and_never_subscribed() -> None:
    fake = FakeTarget(needs_parents=True)
    made = provisioned([slash("INBOX"), slash("P", "\\Noselect"), slash("P/C")], fake, ["INBOX", "P/C", "P"])

    assert [name for name, _ in fake.created] == ["P", "P.C"]
    assert {f.source: f.target for f in made.plan.folders} == {"INBOX": "INBOX", "P/C": "P.C"}
    assert fake.subscribed == {"INBOX", "P.C"}

    quiet = FakeTarget()  # a server that makes the hierarchy itself is never asked for P
    provisioned([slash("INBOX"), slash("P", "\\Noselect"), slash("P/C")], quiet, ["P/C"])
    assert [name for name, _ in quiet.created] == ["P.C"]


def test_special_folders_are_created_with_their_attribute() -> None:
    fake = FakeTarget()
    provisioned([slash("Sent Items"), slash("Sent Messages"), slash("Deleted Items")], fake, [])

    assert sorted(fake.created) == [("Deleted Items", "\\Trash"), ("Sent Items", "\\Sent"), ("Sent Messages", None)]


def test_a_name_chosen_by_the_rule_is_kept_by_a_later_plan() -> None:
    fake = FakeTarget()
    first = provisioned([slash("Projects"), slash("Projects/2024")], fake, [])
    listed = [RemoteFolder("Projects", ".", frozenset({"\\NoInferiors"})),
              RemoteFolder("Projects_2024", ".", frozenset({"\\NoInferiors"}))]
    again = plan_mailbox([slash("Projects"), slash("Projects/2024"), slash("New")], SLASH, listed, MBOX)
    made = provision(again, cast(Target, fake), listed, MBOX, [], SLASH, earlier=first.plan)

    assert {f.source: f.target for f in made.plan.folders} == {"New": "New", "Projects": "Projects", "Projects/2024": "Projects_2024"}
    assert [name for name, _ in fake.created][-1] == "New"  # no refused CREATE tried again
    assert len(fake.created) == 3
