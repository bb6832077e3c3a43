"""The ``mailshift`` command: the engine's ``sync`` and ``worker``, plus the service's commands.

``serve`` runs the service (REST and WinRM doors) on a production WSGI server with keep-alive;
``admin`` manages administrator accounts; ``shell`` is an interactive console that accepts the
cmdlets; ``run FILE.ps1`` runs a script with the same interpreter.
"""

from __future__ import annotations

import argparse
import getpass
import importlib.metadata
import logging
import os
import secrets
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine import cli as engine_cli
from engine.errors import ConfigurationError
from engine.private import private_file, private_folder

__all__ = ["main"]

_log = logging.getLogger("mailshift.serve")

EXIT_OK, EXIT_USAGE = 0, 2


def build_parser() -> argparse.ArgumentParser:
    """The ``mailshift`` argument parser."""
    parser = argparse.ArgumentParser(prog="mailshift", description="Mailshift: Exchange-style IMAP migrations")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_installed_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    engine_cli.add_commands(sub)

    serve = sub.add_parser("serve", help="run the service (REST API, WinRM endpoint) until stopped",
                           description="Serve the cmdlets over HTTP (and HTTPS) with keep-alive. Settings come from "
                           "<instance>/mailshift.toml and MAILSHIFT_* variables; the options below win.")
    _instance(serve)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="HTTP port (default 5985)")
    serve.add_argument("--https-port", type=int, help="HTTPS port (default 5986; used with --https)")
    serve.add_argument("--https", action="store_true", default=None,
                       help="also serve HTTPS (a self-signed certificate is made when none is configured)")
    serve.add_argument("--create-admin", action="store_true",
                       help="when the instance has no administrator yet, create 'admin' with a generated password "
                       "written to <instance>/initial-admin-password (mode 0600; delete it once read)")
    serve.add_argument("-v", "--verbose", action="store_true",
                       help="log at debug level (each sync step, chunk, retry and pause), whatever LOG_LEVEL says")

    admin = sub.add_parser("admin", help="manage administrator accounts",
                           description="Administrator accounts log in to every door with Basic authentication.")
    _instance(admin)
    admin_sub = admin.add_subparsers(dest="admin_command", required=True)
    add = admin_sub.add_parser("add", help="create an account or change its password")
    add.add_argument("name")
    add.add_argument("--email", help="where this administrator's status e-mails go")
    add.add_argument("--password-env", metavar="NAME",
                     help="read the password from this environment variable instead of asking for it")
    add.add_argument("--generate", action="store_true", help="generate a password and print it once")
    remove = admin_sub.add_parser("remove", help="delete an account")
    remove.add_argument("name")
    admin_sub.add_parser("list", help="list the accounts")
    shells = admin_sub.add_parser("shells", help="list the open WinRM/PSRP shells of the running service",
                                  description="The shells `mailshift serve` holds on this instance, as it answers "
                                  "a request put in <instance>/shell-requests within a second.")
    shells.add_argument("name", nargs="?", help="only this administrator's shells")
    close_shells = admin_sub.add_parser("close-shells", help="close an administrator's shells in the running service",
                                        description="Frees the shell quota of a client that leaked shells: the "
                                        "service closes them within a second (through <instance>/shell-requests).")
    close_shells.add_argument("name")
    close_shells.add_argument("--id", help="close only the shell with this ShellId")

    shell = sub.add_parser("shell", help="an interactive console that accepts the cmdlets",
                           description="Type the migration cmdlets as in PowerShell (tab completes names and "
                           "parameters). Runs on the instance folder; the scheduler runs while the shell is open "
                           "unless --no-scheduler is given (use it when `mailshift serve` runs on the same instance).")
    _instance(shell)
    shell.add_argument("--no-scheduler", action="store_true", help="do not run batches from this process")
    shell.add_argument("--user", default=os.environ.get("USER", "admin"), help="administrator name for the log")
    run = sub.add_parser("run", help="run a PowerShell script file with the cmdlets")
    _instance(run)
    run.add_argument("file", type=Path)
    run.add_argument("--no-scheduler", action="store_true", help="do not run batches from this process")
    run.add_argument("--wait", action="store_true",
                     help="keep running the scheduler after the script until Ctrl-C (so started batches progress)")
    run.add_argument("--user", default=os.environ.get("USER", "admin"), help="administrator name for the log")
    module = sub.add_parser("module", help="the PowerShell modules",
                            description="Regenerate psmodule/Mailshift (Public/, the format file, MAML help, manifest) "
                            "and the manifest of psmodule/Mailshift.ExchangePreludes from the cmdlet registry.")
    module_sub = module.add_subparsers(dest="module_command", required=True)
    module_build = module_sub.add_parser("build", help="regenerate the generated files of the modules")
    module_build.add_argument("--output", type=Path, default=Path("psmodule"), metavar="PATH",
                              help="the folder holding both module folders (default psmodule)")
    return parser


def _installed_version() -> str:
    """The version of the installed ``mailshift`` distribution, from its package metadata."""
    try:
        return importlib.metadata.version("mailshift")
    except importlib.metadata.PackageNotFoundError:
        return "(unknown: the mailshift package is not installed)"


def _instance(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--instance", type=Path, default=None, metavar="PATH",
                        help="instance folder (default $MAILSHIFT_INSTANCE or ./instance)")


def _config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    given = {"INSTANCE": args.instance, "HOST": getattr(args, "host", None), "PORT": getattr(args, "port", None),
             "HTTPS_PORT": getattr(args, "https_port", None), "HTTPS": getattr(args, "https", None)}
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in given.items() if v is not None}


def _serve(args: argparse.Namespace) -> int:
    from cheroot import wsgi
    from cheroot.ssl.builtin import BuiltinSSLAdapter

    from shim.app import create_app
    from shim.config import load_config

    from engine.logs import configure_logging
    from engine.sync import keep_large_blocks_out_of_the_heap

    keep_large_blocks_out_of_the_heap()  # the service copies mailboxes on its worker threads
    settings = load_config(_config_overrides(args))
    log_path = configure_logging(settings["INSTANCE"], level="DEBUG" if args.verbose else str(settings["LOG_LEVEL"]),
                                 line_format=str(settings["LOG_FORMAT"]), max_bytes=int(settings["LOG_MAX_BYTES"]),
                                 backup_count=int(settings["LOG_BACKUP_COUNT"]))
    app = create_app(_config_overrides(args))
    config = app.config
    servers = [wsgi.Server((config["HOST"], int(config["PORT"])), app, numthreads=32, request_queue_size=64,
                           server_name="Mailshift")]
    if config["HTTPS"]:
        cert, key = _certificate(config)
        secure = wsgi.Server((config["HOST"], int(config["HTTPS_PORT"])), app, numthreads=32, server_name="Mailshift")
        secure.ssl_adapter = BuiltinSSLAdapter(cert, key)
        servers.append(secure)
    for server in servers:
        server.prepare()
    shell_control = app.extensions["mailshift_shell_control"]
    shell_control.start()
    accounts = app.extensions["mailshift_accounts"]
    if not accounts.names():
        if args.create_admin:
            password = secrets.token_urlsafe(18)
            accounts.set("admin", password)
            where = Path(config["INSTANCE"]) / "initial-admin-password"
            fd = os.open(where, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(password + "\n")
            print(f"mailshift: created the administrator 'admin'; its password is in {where.resolve()} "
                  "(read it, then delete the file; `mailshift admin add admin` changes it)", flush=True)
        else:
            print("mailshift: no administrator account yet; create one with `mailshift admin add NAME`",
                  file=sys.stderr)
    for server in servers:
        scheme = "https" if server.ssl_adapter else "http"
        host, port = server.bind_addr[:2]
        print(f"mailshift: serving {scheme}://{host}:{port}/wsman and {scheme}://{host}:{port}/api/v1 "
              f"(instance {config['INSTANCE']})", flush=True)
        _log.info("listening on %s://%s:%s (/wsman, /powershell, /api/v1)", scheme, host, port,
                  extra={"listen": f"{scheme}://{host}:{port}"})
    _log_settings(config, log_path)
    halt = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: halt.set())
    threads = [threading.Thread(target=s.serve, name=f"serve-{i}", daemon=True) for i, s in enumerate(servers)]
    for thread in threads:
        thread.start()
    try:
        halt.wait()
    finally:
        for server in servers:
            server.stop()
        shell_control.stop()
        if app.extensions.get("mailshift_owns_service"):
            app.extensions["mailshift_service"].close()
    return EXIT_OK


def _log_settings(config: Any, log_path: Path) -> None:
    """The start-up lines saying where mail goes and how status e-mails leave (never a password)."""
    if config["TARGET_IMAP_HOST"]:
        _log.info("target: IMAP %s port %s, security %s, login %s%s (password from $%s)", config["TARGET_IMAP_HOST"],
                  config["TARGET_IMAP_PORT"] or "default", config["TARGET_IMAP_SECURITY"], config["TARGET_IMAP_USER"],
                  f", authorization identity {config['TARGET_IMAP_AUTHZID']}" if config["TARGET_IMAP_AUTHZID"] else "",
                  config["TARGET_IMAP_PASSWORD_ENV"],
                  extra={"target": "IMAP", "host": config["TARGET_IMAP_HOST"], "port": config["TARGET_IMAP_PORT"],
                         "security": config["TARGET_IMAP_SECURITY"], "user": config["TARGET_IMAP_USER"]})
    else:
        maildir = config["TARGET_MAILDIR"] or str(Path(config["INSTANCE"]) / "mailboxes" / "{EmailAddress}" / "Maildir")
        _log.info("target: Maildir %s", maildir, extra={"target": "Maildir", "maildir": maildir})
    if config["SMTP_HOST"]:
        sender = config["SMTP_SENDER"] or f"mailshift@{config['SMTP_HOST']}"
        _log.info("status e-mails: SMTP %s port %s, security %s, sender %s%s", config["SMTP_HOST"],
                  config["SMTP_PORT"] or "default", config["SMTP_SECURITY"], sender,
                  f", login {config['SMTP_USER']} (password from ${config['SMTP_PASSWORD_ENV']})"
                  if config["SMTP_USER"] else "",
                  extra={"smtp_host": config["SMTP_HOST"], "smtp_port": config["SMTP_PORT"], "sender": sender})
    else:
        _log.info("status e-mails: SMTP_HOST is not set; no status e-mail will be sent")
    _log.info("logging to %s (%s lines, level %s, rotated at %d bytes, %d kept)", log_path, config["LOG_FORMAT"],
              config["LOG_LEVEL"], config["LOG_MAX_BYTES"], config["LOG_BACKUP_COUNT"])


def _certificate(config: Any) -> tuple[str, str]:
    if config["TLS_CERT"] and config["TLS_KEY"]:
        return str(config["TLS_CERT"]), str(config["TLS_KEY"])
    from engine.tls import self_signed_certificate

    folder = Path(config["INSTANCE"]) / "tls"
    cert, key = folder / "service.crt", folder / "service.key"
    if not cert.exists() or not key.exists():
        private_folder(folder)
        cert_pem, key_pem = self_signed_certificate(os.uname().nodename, days=825)
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key_pem)
        private_file(cert).write_bytes(cert_pem)
        print(f"mailshift: made a self-signed certificate {cert} (set TLS_CERT and TLS_KEY to use your own)",
              file=sys.stderr)
    return str(cert), str(key)


def _admin(args: argparse.Namespace) -> int:
    from shim.accounts import Accounts
    from shim.config import load_config

    accounts = Accounts(load_config(_config_overrides(args))["INSTANCE"])
    if args.admin_command == "list":
        for account in accounts.names():
            print(f"{account.name}\t{account.email or ''}")
        return EXIT_OK
    if args.admin_command == "remove":
        accounts.remove(args.name)
        return EXIT_OK
    if args.admin_command in ("shells", "close-shells"):
        return _admin_shells(args, accounts)
    if args.generate:
        password = secrets.token_urlsafe(18)
    elif args.password_env:
        password = os.environ.get(args.password_env, "")
        if not password:
            raise ConfigurationError(f"${args.password_env} is empty or not set")
    else:
        password = getpass.getpass(f"Password for {args.name}: ")
        if getpass.getpass("Again: ") != password:
            raise ConfigurationError("the passwords differ")
    accounts.set(args.name, password, email=args.email)
    if args.generate:
        print(password)
    return EXIT_OK


def _admin_shells(args: argparse.Namespace, accounts: Any) -> int:
    from shim.config import load_config
    from shim.shellcontrol import close_shells, list_shells

    instance = load_config(_config_overrides(args))["INSTANCE"]
    account: Any = accounts.canonical(args.name) if args.name else None
    if args.name and account is None:
        raise ConfigurationError(f"there is no account named {args.name!r}")
    if args.admin_command == "shells":
        for shell in list_shells(instance, account.name if account else None):
            print(f"{shell['id']}\t{shell['kind']}\t{shell['owner']}\tidle {shell['idle_seconds']} s")
        return EXIT_OK
    closed = close_shells(instance, account.name, args.id)
    for shell_id in closed:
        print(f"closed {shell_id}")
    if args.id and not closed:
        raise ConfigurationError(f"{account.name} has no open shell {args.id}")
    return EXIT_OK


def _local_session(args: argparse.Namespace) -> tuple[Any, Any]:
    from engine.service import MigrationService
    from shim.cmdlets import Registry
    from shim.config import load_config, smtp_settings, target_settings

    config = load_config(_config_overrides(args))
    private_folder(config["IMPORT_FOLDER"])
    service = MigrationService(config["INSTANCE"], target=target_settings(config), smtp=smtp_settings(config),
                               run_scheduler=not args.no_scheduler)
    registry = Registry(service, import_folder=config["IMPORT_FOLDER"])
    return service, registry.session(args.user)


def _print_outcome(outcome: Any) -> None:
    if outcome.stdout:
        sys.stdout.write(outcome.stdout if outcome.stdout.endswith("\n") else outcome.stdout + "\n")
    for error in outcome.errors:
        sys.stderr.write(error if error.endswith("\n") else error + "\n")
    sys.stdout.flush()


def _run(args: argparse.Namespace) -> int:
    from shim.pslang import Interpreter

    text = args.file.read_text(encoding="utf-8-sig")
    service, session = _local_session(args)
    try:
        outcome = Interpreter(session).run(text)
        _print_outcome(outcome)
        if args.wait and not args.no_scheduler:
            halt = threading.Event()
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: halt.set())
            halt.wait()
        return int(outcome.exit_code)
    finally:
        service.close()


def _shell(args: argparse.Namespace) -> int:
    from shim.pslang import Interpreter

    service, session = _local_session(args)
    interpreter = Interpreter(session)
    _enable_readline(session, Path(service.instance) / ".mailshift_history")
    print("Mailshift shell: type the migration cmdlets (Get-Help about_Mailshift), 'exit' to leave.")
    try:
        while True:
            try:
                line = input("PS Mailshift> ")
            except EOFError:
                print()
                return EXIT_OK
            except KeyboardInterrupt:
                print()
                continue
            if line.strip().lower() in ("exit", "quit"):
                return EXIT_OK
            while line.rstrip().endswith("`") or line.count("{") > line.count("}"):
                try:
                    line += "\n" + input(">> ")
                except EOFError:
                    break
            if line.strip():
                _print_outcome(interpreter.run(line))
    finally:
        service.close()


def _enable_readline(session: Any, history: Path) -> None:
    try:
        import readline
    except ImportError:  # not on every platform
        return
    names = [c.name for c in session.registry.cmdlets]

    def complete(text: str, state: int) -> str | None:
        buffer = readline.get_line_buffer()
        if text.startswith("-"):
            words = buffer.split()
            cmdlet = next((session.registry.find(w) for w in reversed(words) if session.registry.find(w)), None)
            options = [f"-{p.name}" for p in cmdlet.all_parameters()] if cmdlet else []
        else:
            options = names
        matches = [o for o in options if o.lower().startswith(text.lower())]
        return matches[state] if state < len(matches) else None

    readline.set_completer(complete)
    readline.set_completer_delims(" \t\n|;(")
    readline.parse_and_bind("tab: complete")
    try:
        readline.read_history_file(history)
    except OSError:
        pass
    import atexit

    atexit.register(lambda: _save_history(readline, history))


def _save_history(readline: Any, history: Path) -> None:
    try:
        readline.write_history_file(history)
    except OSError:
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``mailshift`` command; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    engine_cli.setup_logging(args)
    if args.command in ("sync", "worker"):
        return engine_cli.run_command(args, parser)
    commands = {"serve": _serve, "admin": _admin, "run": _run, "shell": _shell, "module": _module}
    command = commands.get(args.command)
    return EXIT_USAGE if command is None else engine_cli.guarded(parser, lambda: command(args))


def _module(args: argparse.Namespace) -> int:
    from shim.modulegen import build

    for path in build(args.output):
        print(path)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
