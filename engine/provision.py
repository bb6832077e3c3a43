"""Making a folder plan real on the target: its folders created, the subscriptions mirrored.

The IO half of :mod:`engine.folders`, which decides everything here from plain data: the rule for
names the target refuses (:func:`~engine.folders.legal_names`), what a refusal means
(:func:`~engine.folders.refused_for_nesting`, :func:`~engine.folders.refused_for_missing_parent`)
and which subscriptions change (:func:`~engine.folders.subscription_changes`). This module only
talks to the target through the :class:`~engine.targets.Target` protocol and records what
happened: the plan with the names actually created, and a folder error for each folder that
could not be created at all (the rest of the mailbox is still copied).

A lost connection or throttling propagates (the caller plans again from scratch); everything
done before is found again on the target by the next attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from engine.errors import CommandRefused, FolderError
from engine.folders import (
    INBOX,
    FolderPlan,
    MailboxPlan,
    Namespace,
    RemoteFolder,
    legal_names,
    refused_for_missing_parent,
    refused_for_nesting,
    subscription_changes,
    target_name,
    target_path,
)
from engine.targets import Target

__all__ = ["Provisioned", "provision"]

log = logging.getLogger(__name__)

_Path = tuple[str, ...]


@dataclass(frozen=True)
class Provisioned:
    """What :func:`provision` did."""

    #: The plan with the target names actually used (and their notes); folders that could not
    #: be created are in :attr:`MailboxPlan.failed`, not in :attr:`MailboxPlan.folders`.
    plan: MailboxPlan
    #: One folder error per folder that could not be created, for the run's report.
    errors: list[str]
    #: Subscriptions that could not be read or changed, for the run's report.
    warnings: list[str]


def provision(
    plan: MailboxPlan,
    target: Target,
    listed: Sequence[RemoteFolder],
    namespace: Namespace,
    source_subscribed: Iterable[str],
    source_ns: Namespace,
    *,
    earlier: MailboxPlan | None = None,
) -> Provisioned:
    """Create the plan's folders on the target, then mirror the source's subscriptions.

    Args:
        plan: A fresh plan from :func:`~engine.folders.plan_mailbox`.
        target: The open target.
        listed: The target's folders as listed when the plan was made.
        namespace: The target's personal namespace.
        source_subscribed: The folders the source subscribes (LSUB).
        source_ns: The source's personal namespace.
        earlier: The plan of an earlier run, whatever it was made from: a folder whose
            earlier target still exists keeps it instead of getting a new folder.

    Returns:
        The plan as made real, with folder errors and warnings.

    Raises:
        engine.errors.ConnectionLost, engine.errors.Throttled: The target went away.
    """
    maker = _Maker(target, listed, namespace)
    folders, failed = maker.create_all(plan, earlier)
    errors = [str(FolderError(source, error)) for source, error in failed]
    for error in errors:
        log.error("%s", error)
    warnings = _mirror_subscriptions(target, folders, source_subscribed, source_ns, namespace, maker.hierarchy)
    return Provisioned(replace(plan, folders=folders, failed=failed), errors, warnings)


class _Maker:
    """Creates target folders, renaming the refused ones by the rule of :mod:`engine.folders`."""

    def __init__(self, target: Target, listed: Sequence[RemoteFolder], namespace: Namespace) -> None:
        self.target = target
        self.namespace = namespace
        #: Levels of the hierarchy that exist, \\Noselect ones included.
        self.existing: set[_Path] = set()
        #: Folders that can hold mail: created folders, and listed ones but \\Noselect.
        self.selectable: set[_Path] = set()
        self.childless: set[_Path] = set()
        for folder in listed:
            flags = {flag.casefold() for flag in folder.flags}
            path = target_path(folder.name, namespace)
            if path is None or "\\nonexistent" in flags:
                continue
            self.existing.add(path)
            if "\\noselect" not in flags:
                self.selectable.add(path)
            if "\\noinferiors" in flags:
                self.childless.add(path)
        #: Parents created only because a server refused a child without them.
        self.hierarchy: list[str] = []

    def create_all(
        self, plan: MailboxPlan, earlier: MailboxPlan | None
    ) -> tuple[list[FolderPlan], list[tuple[str, str]]]:
        """Create every folder of ``plan.create``; the plan's folders with their final names,
        and ``(source, error)`` for those that could not be created."""
        before = {folder.source: folder for folder in earlier.folders} if earlier else {}
        folders = list(plan.folders)
        index = {folder.target: number for number, folder in enumerate(folders)}
        taken = {self._path(folder.target) for folder in folders}
        moved: dict[_Path, _Path] = {}
        failed: list[tuple[str, str]] = []
        for name in plan.create:
            number = index.get(name)
            if number is None:
                continue
            folder = folders[number]
            planned = self._path(name)
            path = _follow(planned, moved)
            note = folder.note
            old = before.get(folder.source)
            if path not in self.selectable and old is not None and old.target != name:
                old_path = self._path(old.target)
                if old_path in self.selectable and old_path not in taken:
                    path, note = old_path, old.note
            if path not in self.selectable:
                outcome = self._create(path, taken - {planned}, plan.special_use.get(name))
                if isinstance(outcome, str):
                    failed.append((folder.source, outcome))
                    folders[number] = replace(folder, target="")
                    continue
                path, why = outcome
                if why:
                    note = "; ".join(part for part in (note, why) if part)
            if path != planned:
                moved[planned] = path
                taken.discard(planned)
                taken.add(path)
            folders[number] = replace(folder, target=target_name(path, self.namespace), note=note)
        # Folders that exist already are not below a renamed one: their parents exist too.
        return [folder for folder in folders if folder.target], failed

    def _path(self, name: str) -> _Path:
        path = target_path(name, self.namespace)
        return path if path is not None else (name,)

    def _create(self, path: _Path, taken: set[_Path], special_use: str | None) -> tuple[_Path, str | None] | str:
        """Create the folder at ``path`` or the first legal name the rule gives for it.

        Returns:
            The path created and a note when it is not ``path``; or the error when no name
            could be created.
        """
        name = target_name(path, self.namespace)
        answer = self._try(name, special_use)
        if answer is None:
            self._made(path)
            return path, None
        answers = [answer]
        if refused_for_missing_parent(answer) and self._make_parents(path):
            answer = self._try(name, special_use)
            if answer is None:
                self._made(path)
                return path, None
            answers.append(answer)
        depth = max((d for d in range(len(path)) if path[:d] in self.existing or d == 0), default=0)
        tried = {path}
        while True:
            cannot_nest = path[:depth] in self.childless or any(refused_for_nesting(text) for text in answers)
            if cannot_nest and depth:
                self.childless.add(path[:depth])
            fresh = [
                (candidate, why)
                for candidate, why in legal_names(path, existing=depth, cannot_nest=cannot_nest, taken=taken)
                if candidate not in tried
            ]
            if not fresh:
                names = ", ".join(repr(target_name(p, self.namespace)) for p in sorted(tried, key=len, reverse=True))
                return f"cannot be created on the target (tried {names}): {answers[-1]}"
            candidate, why = fresh[0]
            tried.add(candidate)
            answer = self._try(target_name(candidate, self.namespace), special_use)
            if answer is None:
                self._made(candidate)
                chosen = target_name(candidate, self.namespace)
                log.warning("target refused %r (%s); created %r instead", name, answers[-1], chosen)
                return candidate, f"the target refused {name!r} ({answers[0]}); named {chosen!r} ({why})"
            answers.append(answer)

    def _made(self, path: _Path) -> None:
        self.existing.add(path)
        self.selectable.add(path)

    def _make_parents(self, path: _Path) -> bool:
        """Create the missing parents of ``path`` as hierarchy only; whether any was made."""
        made = False
        for depth in range(1, len(path)):
            parent = path[:depth]
            if parent in self.existing or parent == (INBOX,):
                continue
            name = target_name(parent, self.namespace)
            if self._try(name, None) is not None:
                return made
            self.existing.add(parent)
            self.hierarchy.append(name)
            made = True
        return made

    def _try(self, name: str, special_use: str | None) -> str | None:
        """CREATE ``name``; None when done, else the target's answer."""
        try:
            self.target.create_folder(name, special_use)
        except (CommandRefused, FolderError) as exc:
            return str(exc)
        return None


def _follow(path: _Path, moved: dict[_Path, _Path]) -> _Path:
    """``path`` below the new name of its nearest renamed ancestor (or itself renamed)."""
    for depth in range(len(path), 0, -1):
        new = moved.get(path[:depth])
        if new is not None:
            return new + path[depth:]
    return path


def _mirror_subscriptions(
    target: Target,
    folders: Sequence[FolderPlan],
    source_subscribed: Iterable[str],
    source_ns: Namespace,
    namespace: Namespace,
    hierarchy: Sequence[str],
) -> list[str]:
    """Make the target's subscriptions of the copied folders the source's; the warnings."""
    try:
        current = target.subscriptions()
    except (CommandRefused, FolderError) as exc:
        return [f"subscriptions not copied: the target's could not be read: {exc}"]
    subscribe, unsubscribe = subscription_changes(
        folders, source_subscribed, source_ns, current, namespace, hierarchy=hierarchy
    )
    warnings = []
    for names, wanted in ((subscribe, True), (unsubscribe, False)):
        for name in names:
            try:
                target.subscribe(name, wanted)
            except (CommandRefused, FolderError) as exc:
                verb = "subscribed" if wanted else "unsubscribed"
                warnings.append(f"folder {name!r} could not be {verb} on the target: {exc}")
    return warnings
