"""The ``mailshift`` console command.

``mailshift sync`` copies one mailbox, or every mailbox of a migration CSV file
(``--mailboxes``, the file ``New-MigrationBatch`` reads) a few at a time in one process;
running it again with the same ``--state`` file is an incremental sync. Passwords are read from
environment variables (or the CSV file's Password column), never from the command line, so they
do not show in process listings or shell history.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from pathlib import Path

from engine import defaults
from engine.errors import ConfigurationError, MigrationError
from engine.folders import parse_excludes
from engine.imap import DEFAULT_MASTER_SEPARATOR, LOGIN_PLACEHOLDER, ImapEndpoint, Security, check_master_separator
from engine.logs import configure_logging, quiet_protocol_trace
from engine.store import Store
from engine.sync import MailboxSync, MemoryBudget, Outcome, SyncOptions, SyncReport, keep_large_blocks_out_of_the_heap
from engine.targets import ImapTarget, Target

__all__ = ["add_commands", "build_parser", "guarded", "main", "run_command", "setup_logging"]

#: Exit codes of ``mailshift sync``.
EXIT_SYNCED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_SYNCED_WITH_ERRORS = 3
EXIT_STOPPED = 4

_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|MB|GB)?\s*$", re.IGNORECASE)
_UNITS = {None: 1, "B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}

log = logging.getLogger(__name__)


def _size(text: str) -> int:
    match = _SIZE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (examples: 35MB, 512KB, 1048576)")
    return int(match.group(1)) * _UNITS[match.group(2).upper() if match.group(2) else None]


def _limit(text: str) -> int:
    if text.strip().lower() == "unlimited":
        return defaults.UNLIMITED
    if text.strip().isdigit() and int(text) <= 2147483647:
        return int(text)
    raise argparse.ArgumentTypeError(f"{text!r} is not a limit: use Unlimited or a number from 0 to 2147483647")


def _security(text: str) -> Security:
    try:
        return Security.parse(text)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _master_separator(text: str) -> str:
    try:
        return check_master_separator(text)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _parallel(text: str) -> int:
    if text.strip().isdigit() and 1 <= int(text) <= MAX_PARALLEL:
        return int(text)
    raise argparse.ArgumentTypeError(f"{text!r} is not a number of mailboxes from 1 to {MAX_PARALLEL}")


#: Most mailboxes ``--mailboxes`` copies at a time (each holds two connections and two threads).
MAX_PARALLEL = 50


def _side(parser: argparse.ArgumentParser, side: str, required: bool) -> None:
    group = parser.add_argument_group(f"{side} account")
    group.add_argument(f"--{side}-host", required=required, help="server name or address")
    group.add_argument(f"--{side}-port", type=int, help="port (default 993 with Ssl, 143 otherwise)")
    group.add_argument(
        f"--{side}-security", type=_security, default=Security.SSL, metavar="{None,Ssl,Tls}",
        help="None (plain), Ssl (implicit TLS, the default) or Tls (STARTTLS)",
    )
    group.add_argument(
        f"--{side}-user", required=False,
        help="login as written (Domain/Admin/User, user*master; a refused Admin*User is also tried as User*Admin "
        "and as SASL PLAIN for User), or the admin when --%s-authzid is given%s"
        % (side, " (required unless --mailboxes gives the logins)" if required else ""),
    )
    group.add_argument(f"--{side}-authzid", help="SASL PLAIN authorization identity: the user the admin acts as")
    group.add_argument(
        f"--{side}-password-env", default=f"MAILSHIFT_{side.upper()}_PASSWORD", metavar="VAR",
        help="environment variable holding the password (default MAILSHIFT_%s_PASSWORD)" % side.upper(),
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the engine's commands (``sync`` and ``worker``)."""
    parser = argparse.ArgumentParser(prog="mailshift", description="Mailshift mailbox migration")
    add_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def add_commands(sub: Any) -> None:
    """Add the engine's subcommands (``sync``, ``worker``) to a ``mailshift`` parser's subparsers."""
    sync = sub.add_parser(
        "sync",
        help="copy one mailbox, or those of a CSV file (run again for an incremental sync)",
        description="Copy one mailbox from a source IMAP account to an IMAP account or a local Maildir, "
        "or every mailbox listed in a migration CSV file (--mailboxes). "
        "Running it again with the same --state file copies only what changed.",
    )
    _side(sync, "source", required=True)
    _side(sync, "target", required=False)
    sync.add_argument("--email", metavar="ADDRESS",
                      help="the mailbox's e-mail address, replacing {EmailAddress} in the logins (e.g. --target-user '{EmailAddress}*master')")
    sync.add_argument("--mailboxes", type=Path, metavar="CSV",
                      help="copy every mailbox of this IMAP migration CSV file (columns EmailAddress, UserName, "
                      "Password, optional UserRoot: the file New-MigrationBatch reads) instead of one; the target "
                      "login or Maildir path must contain {EmailAddress}")
    sync.add_argument("--parallel", type=_parallel, default=2, metavar="N",
                      help="with --mailboxes: mailboxes copied at a time (default 2)")
    sync.add_argument("--target-maildir", metavar="PATH",
                      help="copy into this Maildir++ tree instead of an IMAP target ({EmailAddress} is replaced)")
    sync.add_argument("--exclude-folder", action="append", default=[], metavar="PATTERN",
                      help="ExcludeFolders pattern (repeatable): Name, Name/*, #Inbox#, \\#Literal\\#")
    sync.add_argument("--user-root", metavar="PATH", help="treat this folder subtree of the account as the mailbox root")
    sync.add_argument("--max-item-size", type=_size, default=defaults.MAX_ITEM_BYTES, metavar="SIZE",
                      help="skip larger messages as large items (default 35MB)")
    sync.add_argument("--bad-item-limit", type=_limit, default=defaults.BAD_ITEM_LIMIT, metavar="N|Unlimited",
                      help="bad items allowed before the mailbox fails (default 0)")
    sync.add_argument("--large-item-limit", type=_limit, default=defaults.LARGE_ITEM_LIMIT, metavar="N|Unlimited",
                      help="large items allowed before the mailbox fails (default 0)")
    sync.add_argument("--sync-deletions", action="store_true",
                      help="also delete on the target the copied messages that were deleted on the source")
    sync.add_argument("--master-separator", type=_master_separator, default=DEFAULT_MASTER_SEPARATOR, metavar="CHAR",
                      help="what joins the halves of a super-user login such as Admin*User (default '*')")
    sync.add_argument("--accept-untrusted-certificates", action="store_true",
                      help="accept TLS certificates that fail verification (self-signed test servers)")
    sync.add_argument("--state", type=Path, default=Path("instance/mailshift-state.db"), metavar="PATH",
                      help="state database (default instance/mailshift-state.db)")
    sync.add_argument("--json", action="store_true", help="print a machine-readable summary")
    sync.add_argument("--progress", action="store_true", help="print live progress on standard error")
    sync.add_argument("-v", "--verbose", action="count", default=0,
                      help="log each folder step on standard error; -vv also chunks, retries and pauses")

    worker = sub.add_parser(
        "worker",
        help="run the migration scheduler of an instance until stopped",
        description="Run the batches of an instance folder (created by the service or a script) until "
        "SIGTERM or Ctrl-C; syncs in flight stop at a safe point and resume at the next start.",
    )
    worker.add_argument("--instance", type=Path, default=Path("instance"), metavar="PATH",
                        help="instance folder (default ./instance)")
    worker.add_argument("--target-maildir", metavar="TEMPLATE",
                        help="where mailboxes go; {EmailAddress} is replaced (default <instance>/mailboxes/{EmailAddress}/Maildir)")
    worker.add_argument("--poll-seconds", type=float, default=defaults.SCHEDULER_POLL_SECONDS, metavar="SECONDS",
                        help="longest pause between two scheduler passes")
    worker.add_argument("--master-separator", type=_master_separator, default=DEFAULT_MASTER_SEPARATOR, metavar="CHAR",
                        help="what joins Admin and User in a super-user UserName of the CSV files (default '*')")
    worker.add_argument("-v", "--verbose", action="count", default=0,
                        help="the log (standard error and <instance>/logs/mailshift.log) is at info level; "
                        "-vv adds each chunk, retry and pause")


def _password(args: argparse.Namespace, side: str) -> str:
    var = getattr(args, f"{side}_password_env")
    password = os.environ.get(var)
    if password is None:
        raise ConfigurationError(f"the {side} password is read from the environment variable {var}, which is not set")
    return password


def _endpoint(args: argparse.Namespace, side: str, user: str, password: str, authzid: str | None) -> ImapEndpoint:
    return ImapEndpoint(
        host=getattr(args, f"{side}_host"),
        port=getattr(args, f"{side}_port"),
        security=getattr(args, f"{side}_security"),
        user=user,
        authzid=authzid,
        password=password,
        accept_untrusted_certificates=args.accept_untrusted_certificates,
        master_separator=args.master_separator,
    )


def _state_key(email: str | None, source: ImapEndpoint, target_name: str) -> str:
    """The name of a mailbox's copy in the state database: the mailbox (its address, else the
    source login) and its target, not how the source server was reached, so that another
    spelling of the same server (``localhost``, an IP address, another port) continues the copy.
    A source server that is really another one is told by its folders' UIDVALIDITY, and its
    messages are then looked for on the target by content before anything is copied."""
    who = email or (f"{source.user}/{source.authzid}" if source.authzid else source.user)
    return f"mailbox:{who} -> {target_name}"


def _login_name(endpoint: ImapEndpoint) -> str:
    return f"imap:{endpoint.user}@{endpoint.host}:{endpoint.effective_port}" + (
        f"/{endpoint.authzid}" if endpoint.authzid else ""
    )


@dataclass(frozen=True)
class _Job:
    """One mailbox to copy: its accounts, its name in the state database and its options."""

    #: The mailbox's address, or None when a single mailbox is copied without ``--email``.
    email: str | None
    source: ImapEndpoint
    target: Callable[[], Target]
    key: str
    options: SyncOptions


class _Targets:
    """Opens each mailbox's target: a Maildir tree, or an IMAP account (admin login templates)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.maildir: str | None = args.target_maildir
        self.endpoint: ImapEndpoint | None = None
        if self.maildir is not None:
            if args.target_host:
                raise ConfigurationError("give either --target-maildir or --target-host, not both")
        elif not args.target_host or not args.target_user:
            raise ConfigurationError("give --target-maildir PATH, or --target-host and --target-user")
        else:
            self.endpoint = _endpoint(args, "target", args.target_user, _password(args, "target"), args.target_authzid)

    def templated(self) -> bool:
        """Whether each mailbox gets its own target ({EmailAddress} in the path or the login)."""
        if self.endpoint is not None:
            return LOGIN_PLACEHOLDER in self.endpoint.user + (self.endpoint.authzid or "")
        return LOGIN_PLACEHOLDER in (self.maildir or "")

    def open(self, email: str | None) -> tuple[Callable[[], Target], str]:
        """The target factory of a mailbox and the target's name in the state key."""
        if self.endpoint is None:
            from engine.maildir import MaildirTarget  # only this target needs it (start-up time)

            assert self.maildir is not None
            if LOGIN_PLACEHOLDER in self.maildir and email is None:
                raise ConfigurationError(f"the Maildir path contains {LOGIN_PLACEHOLDER}: give the address with --email")
            maildir = Path(self.maildir.replace(LOGIN_PLACEHOLDER, email or "")).resolve()
            return (lambda: MaildirTarget(maildir)), f"maildir:{maildir}"
        endpoint = self.endpoint
        if email is not None:
            endpoint = endpoint.for_mailbox(email)
        elif self.templated():
            raise ConfigurationError(f"the target login contains {LOGIN_PLACEHOLDER}: give the address with --email")
        return (lambda: ImapTarget(endpoint)), _login_name(endpoint)


def _options(args: argparse.Namespace, user_root: str | None, bad_item_limit: int, large_item_limit: int) -> SyncOptions:
    return SyncOptions(
        exclude=tuple(args.exclude_folder),
        user_root=user_root,
        max_item_size=args.max_item_size,
        bad_item_limit=bad_item_limit,
        large_item_limit=large_item_limit,
        sync_deletions=args.sync_deletions,
    )


def _one_job(args: argparse.Namespace, targets: _Targets) -> _Job:
    if not args.source_user:
        raise ConfigurationError("give --source-user (or --mailboxes CSV for the logins of many mailboxes)")
    source = _endpoint(args, "source", args.source_user, _password(args, "source"), args.source_authzid)
    if args.email:
        source = source.for_mailbox(args.email)
    elif LOGIN_PLACEHOLDER in source.user + (source.authzid or ""):
        raise ConfigurationError(f"the source login contains {LOGIN_PLACEHOLDER}: give the address with --email")
    target, target_name = targets.open(args.email)
    options = _options(args, args.user_root, args.bad_item_limit, args.large_item_limit)
    return _Job(args.email, source, target, _state_key(args.email, source, target_name), options)


def _csv_jobs(args: argparse.Namespace, targets: _Targets) -> list[_Job]:
    """One job per row of the ``--mailboxes`` file; every problem of the file is a usage error."""
    from engine.csvfile import MigrationType, parse_migration_csv

    for flag, given in (("--source-user", args.source_user), ("--source-authzid", args.source_authzid),
                        ("--email", args.email), ("--user-root", args.user_root)):
        if given:
            raise ConfigurationError(
                f"{flag} cannot be combined with --mailboxes: each row of the file gives the mailbox's "
                "EmailAddress, UserName, Password and UserRoot"
            )
    if not targets.templated():
        raise ConfigurationError(
            f"with --mailboxes every mailbox needs its own target: put {LOGIN_PLACEHOLDER} in --target-user "
            f"(e.g. '{LOGIN_PLACEHOLDER}*master'), --target-authzid or --target-maildir"
        )
    try:
        data = args.mailboxes.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the mailbox list {args.mailboxes}: {exc.strerror}") from exc
    try:
        parsed = parse_migration_csv(
            data, MigrationType.IMAP,
            batch_defaults={"BadItemLimit": args.bad_item_limit, "LargeItemLimit": args.large_item_limit},
        )
    except ConfigurationError as exc:
        problems = str(exc).replace("\n", "\n  ")
        raise ConfigurationError(f"the mailbox list {args.mailboxes} cannot be used:\n  {problems}") from exc
    jobs = []
    for row in parsed.rows:
        source = _endpoint(args, "source", row.values["UserName"], row.values["Password"], None)
        target, target_name = targets.open(row.email)
        options = _options(args, row.values.get("UserRoot") or None,
                           row.settings.bad_item_limit, row.settings.large_item_limit)
        jobs.append(_Job(row.email, source, target, _state_key(row.email, source, target_name), options))
    return jobs


def _summary(report: SyncReport) -> str:
    p = report.progress
    lines = [
        f"{report.mailbox}: {report.outcome.value}",
        f"  folders {p['folders_done']}/{p['folders_total']}, messages copied {p['messages_copied']}, "
        f"found already on the target {p['messages_found']}, skipped {p['messages_skipped']}, "
        f"flags updated {p['flags_updated']}, deleted {p['messages_deleted']}",
        f"  {p['bytes_copied']} bytes in {p['seconds']} s ({p['messages_per_second']} messages/s)",
    ]
    lines += [f"  folder {f['source']!r} -> {f['target']!r}: {f['note']}" for f in report.folders if "note" in f]
    lines += [f"  excluded {e['source']!r} (pattern {e['pattern']!r})" for e in report.excluded]
    lines += [f"  folder error: {e}" for e in report.folder_errors]
    lines += [f"  warning: {w}" for w in report.warnings]
    altered = report.alteration_summary()
    if altered:
        changes = ", ".join(f"{kind} ({count:,})" for kind, count in altered.items())
        lines.append(f"  not exact: the target changed {len(report.altered):,} messages: {changes}")
    lines += [
        f"  skipped {s.kind} in {s.folder!r} uid {s.uid}: {s.subject!r} ({s.date}, {s.size} bytes): {s.reason}"
        for s in report.skipped_items
    ]
    if report.error:
        lines.append(f"  error: {report.error}")
    return "\n".join(lines)


#: Exit code of each outcome; with several mailboxes, the first of these that occurs.
_EXIT_CODES = {
    Outcome.FAILED: EXIT_FAILED,
    Outcome.STOPPED: EXIT_STOPPED,
    Outcome.SYNCED_WITH_ERRORS: EXIT_SYNCED_WITH_ERRORS,
    Outcome.SYNCED: EXIT_SYNCED,
}


def _run_sync(args: argparse.Namespace) -> int:
    parse_excludes(args.exclude_folder)  # a bad pattern is a usage error, reported before connecting
    keep_large_blocks_out_of_the_heap()
    targets = _Targets(args)
    jobs = _csv_jobs(args, targets) if args.mailboxes is not None else [_one_job(args, targets)]
    stop = threading.Event()
    # Ctrl-C or SIGTERM: finish the chunks in flight, record them, and stop.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    memory = MemoryBudget(defaults.PROCESS_IN_FLIGHT_BYTES) if len(jobs) > 1 else None
    if len(jobs) > 1:
        Store(args.state).close()  # create or upgrade the database once, before the threads open it
    running: dict[int, MailboxSync] = {}
    lock = threading.Lock()

    def copy(n: int) -> SyncReport:
        job = jobs[n]
        store = Store(args.state)  # one connection per thread
        try:
            sync = MailboxSync(job.source, job.target, store, job.key, job.options, stop=stop, memory=memory,
                               label=job.email)
            with lock:
                running[n] = sync
            try:
                return sync.run()
            finally:
                with lock:
                    running.pop(n, None)
        finally:
            store.close()

    done = threading.Event()
    if args.progress:
        threading.Thread(target=_report_progress, args=(running, lock, done), daemon=True).start()
    try:
        if len(jobs) == 1:
            reports = [copy(0)]
        else:
            with ThreadPoolExecutor(max_workers=min(args.parallel, len(jobs)), thread_name_prefix="mailbox") as pool:
                reports = list(pool.map(copy, range(len(jobs))))
    finally:
        done.set()
    if args.json:
        if args.mailboxes is None:
            print(json.dumps(reports[0].as_dict(), indent=2, ensure_ascii=False))
        else:
            entries = [{"email": job.email, **report.as_dict()} for job, report in zip(jobs, reports)]
            print(json.dumps({"mailboxes": entries}, indent=2, ensure_ascii=False))
    else:
        print("\n".join(_summary(report) for report in reports))
    outcomes = {report.outcome for report in reports}
    return next(code for outcome, code in _EXIT_CODES.items() if outcome in outcomes)


def _run_worker(args: argparse.Namespace) -> int:
    from engine.scheduler import TargetSettings
    from engine.service import MigrationService

    keep_large_blocks_out_of_the_heap()
    path = configure_logging(args.instance, level="DEBUG" if args.verbose >= 2 else "INFO")
    log.info("worker: instance %s, target Maildir %s; logging to %s", args.instance,
             args.target_maildir or "<instance>/mailboxes/{EmailAddress}/Maildir", path)
    target = TargetSettings(maildir=args.target_maildir) if args.target_maildir else None
    service = MigrationService(args.instance, target=target, poll_seconds=args.poll_seconds,
                               master_separator=args.master_separator)
    halt = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: halt.set())
    try:
        halt.wait()
    finally:
        service.close()
    return 0


def _report_progress(running: dict[int, MailboxSync], lock: threading.Lock, done: threading.Event) -> None:
    while not done.wait(2.0):
        with lock:
            syncs = [running[n] for n in sorted(running)]
        for sync in syncs:
            p = sync.progress.snapshot()
            print(
                f"[{p['seconds']:.0f}s] {sync.key}: folder {p['folders_done']}/{p['folders_total']} "
                f"{p['current_folder'] or ''} copied {p['messages_copied']}/{p['messages_total']} "
                f"({p['messages_per_second']}/s) skipped {p['messages_skipped']}",
                file=sys.stderr,
                flush=True,
            )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the engine's ``mailshift`` commands; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args)
    return run_command(args, parser)


def _log_level(args: argparse.Namespace) -> str:
    """WARNING, INFO with ``-v`` (folder steps), DEBUG with ``-vv`` (chunks, retries, pauses)."""
    return ("WARNING", "INFO", "DEBUG")[min(int(getattr(args, "verbose", 0) or 0), 2)]


def setup_logging(args: argparse.Namespace) -> None:
    """Log to standard error: folder steps with ``-v``, chunks, retries and pauses with ``-vv``, else warnings only."""
    logging.basicConfig(
        level=_log_level(args),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    quiet_protocol_trace()


def run_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run an engine subcommand parsed by ``parser``; returns the exit code."""
    commands = {"sync": _run_sync, "worker": _run_worker}
    command = commands.get(args.command)
    return EXIT_USAGE if command is None else guarded(parser, lambda: command(args))


def guarded(parser: argparse.ArgumentParser, action: Callable[[], int]) -> int:
    """Run a command's action; a bad setting exits with a usage error, an engine refusal with exit code 1."""
    try:
        return action()
    except ConfigurationError as exc:
        parser.exit(EXIT_USAGE, f"mailshift: {exc}\n")
    except MigrationError as exc:
        print(f"mailshift: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
