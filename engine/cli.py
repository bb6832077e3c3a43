"""The ``mailshift`` console command.

``mailshift sync`` copies one mailbox; running it again with the same ``--state`` file is an
incremental sync. Passwords are read from environment variables, never from the command line,
so they do not show in process listings or shell history.
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
from typing import Any
from pathlib import Path

from engine import defaults
from engine.errors import ConfigurationError, MigrationError
from engine.folders import parse_excludes
from engine.imap import LOGIN_PLACEHOLDER, ImapEndpoint, Security
from engine.store import Store
from engine.sync import MailboxSync, Outcome, SyncOptions, SyncReport
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


def _side(parser: argparse.ArgumentParser, side: str, required: bool) -> None:
    group = parser.add_argument_group(f"{side} account")
    group.add_argument(f"--{side}-host", required=required, help="server name or address")
    group.add_argument(f"--{side}-port", type=int, help="port (default 993 with Ssl, 143 otherwise)")
    group.add_argument(
        f"--{side}-security", type=_security, default=Security.SSL, metavar="{None,Ssl,Tls}",
        help="None (plain), Ssl (implicit TLS, the default) or Tls (STARTTLS)",
    )
    group.add_argument(
        f"--{side}-user", required=required,
        help="login as written (Domain/Admin/User or user*master forms work), or the admin when --%s-authzid is given" % side,
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
        help="copy one mailbox (run again for an incremental sync)",
        description="Copy one mailbox from a source IMAP account to an IMAP account or a local Maildir. "
        "Running it again with the same --state file copies only what changed.",
    )
    _side(sync, "source", required=True)
    _side(sync, "target", required=False)
    sync.add_argument("--email", metavar="ADDRESS",
                      help="the mailbox's e-mail address, replacing {EmailAddress} in the logins (e.g. --target-user '{EmailAddress}*master')")
    sync.add_argument("--target-maildir", type=Path, metavar="PATH", help="copy into this Maildir++ tree instead of an IMAP target")
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
    sync.add_argument("--accept-untrusted-certificates", action="store_true",
                      help="accept TLS certificates that fail verification (self-signed test servers)")
    sync.add_argument("--state", type=Path, default=Path("instance/mailshift-state.db"), metavar="PATH",
                      help="state database (default instance/mailshift-state.db)")
    sync.add_argument("--json", action="store_true", help="print a machine-readable summary")
    sync.add_argument("--progress", action="store_true", help="print live progress on standard error")
    sync.add_argument("-v", "--verbose", action="store_true", help="log each step on standard error")

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
    worker.add_argument("-v", "--verbose", action="store_true", help="log each step on standard error")


def _endpoint(args: argparse.Namespace, side: str, accept_untrusted: bool) -> ImapEndpoint:
    var = getattr(args, f"{side}_password_env")
    password = os.environ.get(var)
    if password is None:
        raise ConfigurationError(f"the {side} password is read from the environment variable {var}, which is not set")
    endpoint = ImapEndpoint(
        host=getattr(args, f"{side}_host"),
        port=getattr(args, f"{side}_port"),
        security=getattr(args, f"{side}_security"),
        user=getattr(args, f"{side}_user"),
        authzid=getattr(args, f"{side}_authzid"),
        password=password,
        accept_untrusted_certificates=accept_untrusted,
    )
    if args.email:
        return endpoint.for_mailbox(args.email)
    if LOGIN_PLACEHOLDER in endpoint.user + (endpoint.authzid or ""):
        raise ConfigurationError(f"the {side} login contains {LOGIN_PLACEHOLDER}: give the address with --email")
    return endpoint


def _summary(report: SyncReport) -> str:
    p = report.progress
    lines = [
        f"{report.mailbox}: {report.outcome.value}",
        f"  folders {p['folders_done']}/{p['folders_total']}, messages copied {p['messages_copied']}, "
        f"skipped {p['messages_skipped']}, flags updated {p['flags_updated']}, deleted {p['messages_deleted']}",
        f"  {p['bytes_copied']} bytes in {p['seconds']} s ({p['messages_per_second']} messages/s)",
    ]
    lines += [f"  folder {f['source']!r} -> {f['target']!r}: {f['note']}" for f in report.folders if "note" in f]
    lines += [f"  excluded {e['source']!r} (pattern {e['pattern']!r})" for e in report.excluded]
    lines += [f"  folder error: {e}" for e in report.folder_errors]
    lines += [
        f"  skipped {s.kind} in {s.folder!r} uid {s.uid}: {s.subject!r} ({s.date}, {s.size} bytes): {s.reason}"
        for s in report.skipped_items
    ]
    if report.error:
        lines.append(f"  error: {report.error}")
    return "\n".join(lines)


def _run_sync(args: argparse.Namespace) -> int:
    accept = args.accept_untrusted_certificates
    source = _endpoint(args, "source", accept)
    target_factory: Callable[[], Target]
    if args.target_maildir is not None:
        if args.target_host:
            raise ConfigurationError("give either --target-maildir or --target-host, not both")
        from engine.maildir import MaildirTarget  # only this target needs it (start-up time)

        maildir = args.target_maildir.resolve()
        target_factory = lambda: MaildirTarget(maildir)  # noqa: E731
        target_name = f"maildir:{maildir}"
    else:
        if not args.target_host or not args.target_user:
            raise ConfigurationError("give --target-maildir PATH, or --target-host and --target-user")
        target = _endpoint(args, "target", accept)
        target_factory = lambda: ImapTarget(target)  # noqa: E731
        target_name = f"imap:{target.user}@{target.host}:{target.effective_port}" + (
            f"/{target.authzid}" if target.authzid else ""
        )
    key = f"imap:{source.user}@{source.host}:{source.effective_port}" + (
        f"/{source.authzid}" if source.authzid else ""
    ) + f" -> {target_name}"
    parse_excludes(args.exclude_folder)  # a bad pattern is a usage error, reported before connecting
    options = SyncOptions(
        exclude=tuple(args.exclude_folder),
        user_root=args.user_root,
        max_item_size=args.max_item_size,
        bad_item_limit=args.bad_item_limit,
        large_item_limit=args.large_item_limit,
        sync_deletions=args.sync_deletions,
    )
    store = Store(args.state)
    try:
        sync = MailboxSync(source, target_factory, store, key, options)
        # Ctrl-C or SIGTERM: finish the chunk in flight, record it, and stop.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: sync.stop.set())
        done = threading.Event()
        if args.progress:
            threading.Thread(target=_report_progress, args=(sync, done), daemon=True).start()
        try:
            report = sync.run()
        finally:
            done.set()
    finally:
        store.close()
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    else:
        print(_summary(report))
    return {
        Outcome.SYNCED: EXIT_SYNCED,
        Outcome.SYNCED_WITH_ERRORS: EXIT_SYNCED_WITH_ERRORS,
        Outcome.FAILED: EXIT_FAILED,
        Outcome.STOPPED: EXIT_STOPPED,
    }[report.outcome]


def _run_worker(args: argparse.Namespace) -> int:
    from engine.scheduler import TargetSettings
    from engine.service import MigrationService

    target = TargetSettings(maildir=args.target_maildir) if args.target_maildir else None
    service = MigrationService(args.instance, target=target, poll_seconds=args.poll_seconds)
    halt = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: halt.set())
    try:
        halt.wait()
    finally:
        service.close()
    return 0


def _report_progress(sync: MailboxSync, done: threading.Event) -> None:
    while not done.wait(2.0):
        p = sync.progress.snapshot()
        print(
            f"[{p['seconds']:.0f}s] folder {p['folders_done']}/{p['folders_total']} {p['current_folder'] or ''} "
            f"copied {p['messages_copied']}/{p['messages_total']} ({p['messages_per_second']}/s) "
            f"skipped {p['messages_skipped']}",
            file=sys.stderr,
            flush=True,
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the engine's ``mailshift`` commands; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args)
    return run_command(args, parser)


def setup_logging(args: argparse.Namespace) -> None:
    """Log to standard error: each step with ``-v``, otherwise warnings only."""
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


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
