"""``make bench``: ``mailshift sync`` against the raw limit of two real Dovecot servers.

Steps (see ``bench/README.md`` for what each figure means):

1. Start a source Dovecot ("slash" layout), a target Dovecot ("dot" layout) and a third one
   that only serves the Maildir-target copies back for checking; all fsync mail
   (``mail_fsync = optimized``) as production servers do.
2. Write the seeded corpus (:mod:`bench.corpus`) into the source Maildirs, then let Dovecot
   index it (an untimed first read of every folder, as on a real source).
3. Timed phases, repeated ``--repeat`` times (the fastest run of each is reported), each
   after flushing dirty pages to disk:

   a. probe (:mod:`bench.probe`): the source's FETCH rate and the target's MULTIAPPEND rate
      with a minimal client, each alone; the limit is the smaller of the two. Then a raw COPY
      (both at once, pipelined), for reference: what a minimal client reaches when source,
      target and client share the machine;
   b. ``mailshift sync`` of every user into fresh target users, timed as a whole: by default
      (``--sync-form csv``) one process copying every user of a migration CSV file
      (``--mailboxes``), ``--parallel`` mailboxes at a time; with ``--sync-form process`` one
      process per user, ``--parallel`` processes at a time. Peak RSS and CPU time of each
      process from ``wait4``;
   c. a no-change re-sync with the same state database(s), then a re-sync after deleting them
      (the state lost: every message is found on the target by content, none copied twice);
   d. the migration service (:class:`engine.service.MigrationService`, the production path of
      the daily incremental syncs): one batch of every user, run by the service's worker
      threads in this process at the endpoint's concurrency (``--parallel``), into fresh target
      users reached through the target's master user; its initial sync, then a no-change
      incremental sync (``Set-MigrationBatch -SyncNow``);
   e. the same initial sync into Maildir trees (``--target-maildir``).

   No copy is deleted before a later timed phase (ext4 without a journal makes new files slow
   for a minute after mass deletions; see ``INODE_REUSE_PAUSE_SECONDS``).

4. Check the last run's copies: every source user's snapshot (body hashes per folder, through
   the folder mapping each sync reported) equals its target's, on every target (the service's
   copies without the items it skipped as too large).
5. Print the figures beside the goals and write them to ``bench/results/latest.json``.

Every server, process and temporary folder is gone when it returns, also after an error,
Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import compileall
import concurrent.futures
import contextlib
import datetime
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from imapclient import imap_utf7

from bench import corpus, probe
from engine import defaults as engine_defaults
from engine.imap import ImapEndpoint, Security
from engine.scheduler import TargetSettings
from engine.service import MigrationService
from tests.servers.dovecot import DOVECOT, DovecotServer, dovecot_missing_message
from tests.servers.mailbox import Snapshot, imap_name, snapshot

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "latest.json"

#: The goals the figures are held to.
GOAL_RATIO = 0.8  # initial sync >= 0.8 x probe limit
GOAL_RESYNC_PERCENT = 2.0  # no-change re-sync <= 2 % of the initial sync's time
GOAL_LOST_STATE_PERCENT = 20.0  # re-sync after losing the state database <= 20 % of the initial
GOAL_RSS_MB = 150.0  # peak RSS per sync process

#: Options every timed sync gets: the 40 MB message is copied, not skipped.
SYNC_OPTIONS = ("--max-item-size", "50MB", "--large-item-limit", "Unlimited", "--json")

_started = time.monotonic()


def say(text: str) -> None:
    """Progress on stderr, with the seconds since start."""
    print(f"[{time.monotonic() - _started:6.1f}s] {text}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- CPU of the servers


def _dovecot_cpu(server: DovecotServer) -> tuple[float, float]:
    """User and system CPU seconds used so far by a Dovecot instance, reaped processes included."""
    title = f"dovecot-{server.root.name}/"
    try:
        master = int((server.root / "run" / "master.pid").read_text().strip())
    except (OSError, ValueError):
        return 0.0, 0.0
    user = system = 0.0
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["pid"] != master and not (cmdline and cmdline[0].startswith(title)):
            continue
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            user += times.user + times.children_user
            system += times.system + times.children_system
    return user, system


def _machine_busy() -> float:
    """CPU seconds all CPUs of the machine have been busy (not idle, not waiting for IO)."""
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0))


class CpuMeter:
    """CPU seconds the Dovecot instances, and the whole machine, used during a phase.

    Approximate: an imap process that lives across the phase boundary counts in full. The
    machine's busy time minus ours tells how much other work ran meanwhile (other sessions on
    a shared machine skew the figures).
    """

    def __init__(self, servers: dict[str, DovecotServer]) -> None:
        self.servers = servers
        self.before = {name: _dovecot_cpu(s) for name, s in servers.items()}
        self.busy = _machine_busy()

    def read(self) -> dict[str, float]:
        busy = _machine_busy() - self.busy  # before the pause below, which would add the reaping
        time.sleep(0.3)  # let the imap processes of closed sessions end and be reaped
        out: dict[str, float] = {}
        for name, server in self.servers.items():
            user, system = _dovecot_cpu(server)
            user, system = user - self.before[name][0], system - self.before[name][1]
            out[f"{name}_dovecot_cpu_seconds"] = round(user + system, 2)
            out[f"{name}_dovecot_system_cpu_seconds"] = round(system, 2)
        out["machine_busy_cpu_seconds"] = round(busy, 2)
        return out


# --------------------------------------------------------------------------- sync processes


#: The two ways of running the ``mailshift sync`` phases (``--sync-form``): one process copying
#: every mailbox of a migration CSV file ``--parallel`` at a time (``--mailboxes``), or one process
#: per mailbox, ``--parallel`` processes at a time.
SYNC_FORMS = ("csv", "process")


@dataclass
class SyncJob:
    """One ``mailshift sync`` process to run: its mailboxes (source users, in the order it
    reports them) and its arguments."""

    label: str  # a name for the process (also in its output files' names)
    users: list[str]
    args: list[str]
    env: dict[str, str]
    #: With ``--mailboxes``: each user's EmailAddress in the file, by which its summary is found.
    emails: list[str] = field(default_factory=list)


@dataclass
class SyncRun:
    """One ``mailshift sync`` process: one mailbox, or every mailbox of a ``--mailboxes`` file."""

    label: str
    users: list[str]
    emails: list[str] = field(default_factory=list)
    returncode: int = -1
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    cpu_seconds: float = 0.0
    system_seconds: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)
    stderr: str = ""

    @property
    def reports(self) -> list[dict[str, Any]]:
        """One JSON summary per mailbox, in the order of ``users`` (``{}`` where one is missing):
        the process's summary, or the entries of its ``{"mailboxes": [...]}``."""
        if "mailboxes" in self.summary:
            found = [m for m in self.summary["mailboxes"] if isinstance(m, dict)]
            if self.emails:  # by address, not by position
                by_email = {str(m.get("email", "")).lower(): m for m in found}
                return [by_email.get(email.lower(), {}) for email in self.emails]
        else:
            found = [self.summary] if self.summary else []
        return (found + [{}] * len(self.users))[:len(self.users)]

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and all(s.get("outcome") == "Synced" for s in self.reports)

    @property
    def failures(self) -> list[str]:
        tail = self.stderr.strip()[-300:]
        out = [f"{user}: exit {self.returncode}, {s.get('outcome')}: {s.get('error') or s.get('folder_errors') or tail}"
               for user, s in zip(self.users, self.reports) if s.get("outcome") != "Synced"]
        if not out and self.returncode != 0:
            out.append(f"{self.label}: exit {self.returncode}: {tail}")
        return out

    def row(self) -> dict[str, Any]:
        """The process's figures."""
        return {
            "process": self.label,
            "users": list(self.users),
            "returncode": self.returncode,
            "process_seconds": round(self.seconds, 3),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "cpu_seconds": round(self.cpu_seconds, 2),
            "system_cpu_seconds": round(self.system_seconds, 2),
            "stderr_tail": self.stderr[-2000:] if not self.ok else "",
        }

    def mailbox_rows(self) -> list[dict[str, Any]]:
        """Each mailbox's figures, from its JSON summary."""
        return [{
            "user": user,
            "email": s.get("email"),
            "outcome": s.get("outcome"),
            "error": s.get("error"),
            "folder_errors": s.get("folder_errors", []),
            "messages_copied": s.get("messages_copied", 0),
            "bytes_copied": s.get("bytes_copied", 0),
            "messages_skipped": s.get("messages_skipped", 0),
            "skipped_items": s.get("skipped_items", []),
            "engine_seconds": s.get("seconds"),
        } for user, s in zip(self.users, self.reports)]


@dataclass
class SyncPhase:
    """All users' syncs of one phase: one process per user, or one for all (``form``)."""

    name: str
    form: str
    parallel: int
    wall_seconds: float
    runs: list[SyncRun]
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def reports(self) -> list[dict[str, Any]]:
        """Every mailbox's JSON summary, in the order of the users (``{}`` where one is missing)."""
        return [s for run in self.runs for s in run.reports]

    @property
    def messages(self) -> int:
        return sum(int(s.get("messages_copied", 0)) for s in self.reports)

    @property
    def bytes(self) -> int:
        return sum(int(s.get("bytes_copied", 0)) for s in self.reports)

    @property
    def messages_per_second(self) -> float:
        return self.messages / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def mb_per_second(self) -> float:
        return self.bytes / 1e6 / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def peak_rss_mb(self) -> float:
        return max((r.peak_rss_mb for r in self.runs), default=0.0)

    @property
    def failures(self) -> list[str]:
        return [f for r in self.runs for f in r.failures]

    def as_dict(self) -> dict[str, Any]:
        return {
            "sync_form": self.form,
            "parallel": self.parallel,
            "processes_run": len(self.runs),
            "wall_seconds": round(self.wall_seconds, 3),
            "messages": self.messages,
            "bytes": self.bytes,
            "messages_per_second": round(self.messages_per_second, 1),
            "mb_per_second": round(self.mb_per_second, 2),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "engine_cpu_seconds": round(sum(r.cpu_seconds for r in self.runs), 2),
            "engine_system_cpu_seconds": round(sum(r.system_seconds for r in self.runs), 2),
            **self.cpu,
            **probe.other_cpu(self.cpu, sum(r.cpu_seconds for r in self.runs)),
            "failures": self.failures,
            "processes": [r.row() for r in self.runs],
            "mailboxes": [m for r in self.runs for m in r.mailbox_rows()],
        }


#: A slim helper that starts the sync processes and reports their ``wait4`` usage. Peak RSS
#: (``ru_maxrss``) counts the memory of the process that forked the child as well (its memory
#: map at ``exec`` time), so the syncs must not be forked by this fat benchmark process: the
#: helper, a fresh ``python -S``, adds a floor of about 10 MB, below any Python program's own.
#: One JSON request per line on stdin, one JSON answer per line on stdout; at end of input
#: (this process ended or gave up) it kills the syncs still running.
_LAUNCHER = r"""
import json, os, subprocess, sys, threading, time
lock = threading.Lock()
children = {}
def reply(obj):
    with lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()
def job(req):
    try:
        with open(req["stdout"], "wb") as out, open(req["stderr"], "wb") as err:
            started = time.monotonic()
            proc = subprocess.Popen(req["argv"], stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    env=req["env"], cwd=req["cwd"])
            with lock:
                children[proc.pid] = proc
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            with lock:
                children.pop(proc.pid, None)
        reply({"id": req["id"], "returncode": proc.returncode, "seconds": time.monotonic() - started,
               "maxrss_kb": usage.ru_maxrss, "cpu_seconds": usage.ru_utime + usage.ru_stime,
               "system_seconds": usage.ru_stime})
    except BaseException as exc:
        reply({"id": req["id"], "error": repr(exc)})
threads = []
for line in sys.stdin:
    thread = threading.Thread(target=job, args=(json.loads(line),), daemon=True)
    thread.start()
    threads.append(thread)
with lock:
    running = list(children.values())
for proc in running:
    try:
        proc.kill()
    except ProcessLookupError:
        pass
for thread in threads:
    thread.join(30)
"""


class Syncs:
    """Runs ``mailshift sync`` processes, a bounded number at a time, through the launcher."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        script = Path(sys.executable).with_name("mailshift")
        self.command = [str(script)] if script.exists() else [sys.executable, "-m", "engine.cli"]
        self._helper = subprocess.Popen(
            [sys.executable, "-S", "-c", _LAUNCHER],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, cwd=workdir,
        )
        self._lock = threading.Lock()
        self._waiting: dict[int, concurrent.futures.Future[dict[str, Any]]] = {}
        self._ids = iter(range(1, 1 << 30))
        self._reader = threading.Thread(target=self._read, name="launcher answers", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._helper.stdout is not None
        for line in self._helper.stdout:
            answer = json.loads(line)
            with self._lock:
                future = self._waiting.pop(answer["id"], None)
            if future is not None:
                future.set_result(answer)
        with self._lock:  # the helper ended: nobody will answer the rest
            waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            future.set_exception(RuntimeError("the sync launcher ended"))

    def _one(self, job: SyncJob) -> SyncRun:
        run = SyncRun(job.label, list(job.users), list(job.emails))
        future: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()
        with self._lock:
            number = next(self._ids)
            self._waiting[number] = future
        out = self.workdir / f"{job.label}.{number}.out"
        err = self.workdir / f"{job.label}.{number}.err"
        request = {
            "id": number, "argv": [*self.command, "sync", *job.args], "env": {**os.environ, **job.env},
            "cwd": str(self.workdir), "stdout": str(out), "stderr": str(err),
        }
        assert self._helper.stdin is not None
        with self._lock:
            self._helper.stdin.write(json.dumps(request) + "\n")
            self._helper.stdin.flush()
        answer = future.result()
        if "error" in answer:
            raise RuntimeError(f"cannot run mailshift sync for {job.label}: {answer['error']}")
        run.returncode = int(answer["returncode"])
        run.seconds = float(answer["seconds"])
        run.peak_rss_mb = answer["maxrss_kb"] / 1024  # kilobytes on Linux
        run.cpu_seconds = float(answer["cpu_seconds"])
        run.system_seconds = float(answer["system_seconds"])
        run.stderr = err.read_text(errors="replace")
        text = out.read_text(errors="replace")
        with contextlib.suppress(json.JSONDecodeError):
            run.summary = json.loads(text) if text.strip() else {}
        out.unlink()
        err.unlink()
        return run

    def run(self, name: str, form: str, jobs: Sequence[SyncJob], parallel: int,
            meter: CpuMeter | None = None) -> SyncPhase:
        """Run one process per job, ``parallel`` at a time, and time the whole phase.

        ``parallel`` is also recorded as the phase's: in the ``csv`` form there is one job, whose
        process copies ``--parallel`` mailboxes at a time itself.
        """
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(parallel, len(jobs))))
        started = time.monotonic()
        futures = [pool.submit(self._one, job) for job in jobs]
        try:
            runs = [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            self.close()
            raise
        finally:
            pool.shutdown(wait=True)
        wall = time.monotonic() - started
        return SyncPhase(name, form, parallel, wall, runs, meter.read() if meter else {})

    def close(self) -> None:
        """Stop the launcher; it kills the syncs still running (only ours)."""
        if self._helper.poll() is not None:
            return
        with contextlib.suppress(OSError, ValueError):
            assert self._helper.stdin is not None
            self._helper.stdin.close()
        try:
            self._helper.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self._helper.kill()
            self._helper.wait()


# --------------------------------------------------------------------------- the migration service

#: How often the benchmark asks the service whether a phase is over (seconds); the scheduler's
#: own pause between passes is ``SERVICE_POLL_SECONDS`` (workers wake it when they end).
SERVICE_WAIT_POLL_SECONDS = 0.01
SERVICE_POLL_SECONDS = 0.02
#: A phase that has not ended after this long is reported as a failure.
SERVICE_TIMEOUT_SECONDS = 900.0

#: The per-phase line the scheduler writes to a user's report (``_report_message``).
_REPORT = re.compile(r"(?P<messages>\d+) messages \((?P<bytes>\d+) bytes\) copied, (?P<skipped>\d+) skipped, "
                     r"(?P<flags>\d+) flag changes in (?P<seconds>[\d.]+) s")

_SYNCED_BATCH = ("Synced", "SyncedWithErrors")
_DEAD_BATCH = ("Stopped", "Failed", "Corrupted", "Completed", "CompletedWithErrors")


@dataclass
class ServicePhase:
    """One phase of a migration batch run by :class:`MigrationService` in this process."""

    name: str
    parallel: int
    wall_seconds: float
    users: list[dict[str, Any]]
    client_cpu_seconds: float = 0.0
    client_system_seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    batch_status: str = ""

    @property
    def messages(self) -> int:
        return sum(int(u.get("messages_copied") or 0) for u in self.users)

    @property
    def bytes(self) -> int:
        return sum(int(u.get("bytes_copied") or 0) for u in self.users)

    @property
    def messages_per_second(self) -> float:
        return self.messages / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def mb_per_second(self) -> float:
        return self.bytes / 1e6 / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def engine_seconds(self) -> float:
        return sum(float(u.get("engine_seconds") or 0.0) for u in self.users)

    @property
    def failures(self) -> list[str]:
        out = [f"{u['user']}: {u['status']}: {u.get('error')}" for u in self.users if u["status"] != "Synced"]
        if self.batch_status not in _SYNCED_BATCH:
            out.append(f"batch: {self.batch_status}")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "parallel": self.parallel,
            "wall_seconds": round(self.wall_seconds, 3),
            "messages": self.messages,
            "bytes": self.bytes,
            "messages_per_second": round(self.messages_per_second, 1),
            "mb_per_second": round(self.mb_per_second, 2),
            "messages_skipped": sum(int(u.get("messages_skipped") or 0) for u in self.users),
            "engine_seconds": round(self.engine_seconds, 3),
            "engine_cpu_seconds": round(self.client_cpu_seconds, 2),
            "engine_system_cpu_seconds": round(self.client_system_seconds, 2),
            **self.cpu,
            **probe.other_cpu(self.cpu, self.client_cpu_seconds),
            "batch_status": self.batch_status,
            "failures": self.failures,
            "users": self.users,
        }


def _cpu_self() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, usage.ru_stime


def _wait_for(what: str, done: Callable[[], bool], timeout: float = SERVICE_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the migration service did not finish {what} in {timeout:.0f}s")
        time.sleep(SERVICE_WAIT_POLL_SECONDS)


def _service_users(service: MigrationService, batch: str, order: Sequence[str]) -> list[dict[str, Any]]:
    """Every user's figures of the phase that just ended, from its report's last line of figures."""
    rows = []
    for view in service.get_users(batch=batch):
        stats = service.get_user_statistics(view.identity, include_report=True, include_skipped_items=True)
        # the phase's line: the last one with the figures (folder errors, warnings follow it)
        match = next((m for m in (_REPORT.search(e["Message"]) for e in reversed(stats.report)) if m), None)
        last = match.string if match else ""
        rows.append({
            "user": view.identity,
            "status": stats.status,
            "error": stats.error or stats.error_summary,
            "messages_copied": int(match["messages"]) if match else 0,
            "bytes_copied": int(match["bytes"]) if match else 0,
            "messages_skipped": int(match["skipped"]) if match else 0,
            "skipped_items": [{"kind": s.kind, "folder": s.folder_name, "size": s.message_size, "failure": s.failure}
                              for s in stats.skipped_items],
            "engine_seconds": float(match["seconds"]) if match else None,
            "synced_item_count": stats.synced_item_count,
            "last_successful_sync_time": stats.last_successful_sync_time.timestamp()
            if stats.last_successful_sync_time else None,
            "report": last,
        })
    rank = {name.lower(): n for n, name in enumerate(order)}
    return sorted(rows, key=lambda r: rank.get(r["user"].lower(), len(rank)))


def run_service(cfg: Config, instance: Path, source: DovecotServer, target: DovecotServer,
                users: Sequence[corpus.UserCorpus], names: Sequence[str], servers: dict[str, DovecotServer],
                tag: str) -> tuple[ServicePhase, ServicePhase]:
    """One batch of every user through :class:`MigrationService`: the initial sync, then a
    no-change incremental sync, each timed from the cmdlet call to the batch being Synced again.

    The target is the target Dovecot reached with its master user (SASL PLAIN, authzid = the
    user's address); the source logins are ``<user>*master`` from the batch CSV; the endpoint's
    MaxConcurrentMigrations and MaxConcurrentIncrementalSyncs are ``--parallel``.
    """
    untrusted = cfg.security != "None"
    settings = TargetSettings(imap=ImapEndpoint(
        host=target.host, port=_port(target, cfg.security), security=Security.parse(cfg.security),
        user=target.master_user, password=target.master_password, authzid="{EmailAddress}",
        accept_untrusted_certificates=untrusted,
    ))
    batch = "bench"
    service = MigrationService(instance, target=settings, poll_seconds=SERVICE_POLL_SECONDS)
    with contextlib.closing(service):
        service.new_endpoint("bench-source", source.host, port=_port(source, cfg.security), security=cfg.security,
                             accept_untrusted_certificates=untrusted, max_concurrent_migrations=cfg.parallel,
                             max_concurrent_incremental_syncs=cfg.parallel, skip_verification=True)
        rows = "".join(f"{names[n]},{u.user}*{source.master_user},{source.master_password}\r\n" for n, u in enumerate(users))
        service.new_batch(batch, ("EmailAddress,UserName,Password\r\n" + rows).encode(), source_endpoint="bench-source",
                          large_item_limit=engine_defaults.UNLIMITED)

        def batch_view() -> Any:
            return service.get_batches(batch)[0]

        def phase_over(check: Callable[[Any], bool]) -> Callable[[], bool]:
            def over() -> bool:
                view = batch_view()
                if view.status in _DEAD_BATCH:
                    raise RuntimeError(f"the service's batch ended {view.status}")
                return view.status in _SYNCED_BATCH and check(view)
            return over

        # -- initial sync: Start-MigrationBatch until the batch is Synced
        _settle()
        meter, cpu0 = CpuMeter(servers), _cpu_self()
        started = time.monotonic()
        service.start_batch(batch)
        _wait_for("the initial sync", phase_over(lambda v: v.initial_sync_date_time is not None))
        wall = time.monotonic() - started
        cpu1 = _cpu_self()
        view = batch_view()
        initial = ServicePhase("service_imap", cfg.parallel, wall, _service_users(service, batch, names),
                               cpu1[0] - cpu0[0], cpu1[1] - cpu0[1], meter.read(), view.status)
        say(f"{tag}service -> IMAP: {initial.wall_seconds:.2f}s, {initial.messages_per_second:.0f} msg/s, "
            f"{initial.mb_per_second:.1f} MB/s, {initial.messages} messages, batch {view.status}, "
            f"target CPU {initial.cpu['target_dovecot_cpu_seconds']:.1f}s")

        # -- no-change incremental sync: Set-MigrationBatch -SyncNow until every user synced again
        last_batch = view.last_synced_date_time
        last_user = {u["user"]: u["last_successful_sync_time"] for u in initial.users}

        def resynced(v: Any) -> bool:
            if last_batch is not None and (v.last_synced_date_time is None or v.last_synced_date_time <= last_batch):
                return False
            return all(
                u.last_successful_sync_time is not None and u.last_successful_sync_time.timestamp() > (last_user.get(u.identity) or 0)
                for u in service.get_users(batch=batch)
            )

        _settle()
        meter, cpu0 = CpuMeter(servers), _cpu_self()
        started = time.monotonic()
        service.set_batch(batch, sync_now=True)
        _wait_for("the incremental sync", phase_over(resynced))
        wall = time.monotonic() - started
        cpu1 = _cpu_self()
        view = batch_view()
        resync = ServicePhase("service_resync", cfg.parallel, wall, _service_users(service, batch, names),
                              cpu1[0] - cpu0[0], cpu1[1] - cpu0[1], meter.read(), view.status)
        say(f"{tag}service no-change re-sync: {resync.wall_seconds:.2f}s, {resync.messages} messages copied, "
            f"engine {resync.engine_seconds:.3f}s over {len(resync.users)} users")
    return initial, resync


def _skipped_bodies(u: corpus.UserCorpus, phase: ServicePhase, n: int) -> set[str]:
    """SHA-256 of the corpus messages the service reported as skipped (matched by size)."""
    sizes = {int(s["size"]) for s in phase.users[n]["skipped_items"]}
    out = set()
    for item in u.items:
        if item.size in sizes:
            with contextlib.suppress(OSError):  # a file renamed since: the check then reports it
                out.add(hashlib.sha256(Path(item.path).read_bytes()).hexdigest())
    return out


def _without(snap: Snapshot, bodies: set[str]) -> Snapshot:
    return {folder: [m for m in messages if m[0] not in bodies] for folder, messages in snap.items()}


# --------------------------------------------------------------------------- checking copies


def _logical(name: str, prefix: str, separator: str) -> str:
    """A mailbox name on a server -> logical path ("/" between levels, no prefix)."""
    if name.upper() == "INBOX":
        return "INBOX"
    if prefix and name.startswith(prefix):
        name = name[len(prefix):]
    return "/".join(name.split(separator))


def folder_mapping(summary: dict[str, Any], source: DovecotServer, prefix: str, separator: str) -> dict[str, str]:
    """Source logical folder -> target logical folder, from the folders a sync reported."""
    return {
        _logical(f["source"], source.prefix, source.separator): _logical(f["target"], prefix, separator)
        for f in summary.get("folders", [])
    }


def compare(src: Snapshot, dst: Snapshot, mapping: dict[str, str]) -> dict[str, Any]:
    """Compare a source snapshot with its copy's, folder by folder through the mapping.

    The check that counts: the same number of messages and the same body hashes per folder.
    Flags and internal dates are compared too and reported apart. Folders that are empty and
    exist on one side only (hierarchy-only parents) are ignored.
    """
    expected: dict[str, list[tuple[str, frozenset[str], int]]] = defaultdict(list)
    for folder, messages in src.items():
        expected[mapping.get(folder, folder)] += messages
    problems: list[str] = []
    meta_problems: list[str] = []
    folders = 0
    for folder in sorted(set(expected) | set(dst)):
        want, got = expected.get(folder), dst.get(folder)
        if want is None or got is None:
            if want or got:
                side = "source" if got is None else "target"
                problems.append(f"{folder!r} only on the {side}, with {len(want or got or [])} messages")
            continue
        folders += 1
        want_bodies = sorted(m[0] for m in want)
        got_bodies = sorted(m[0] for m in got)
        if want_bodies != got_bodies:
            missing = len(set(want_bodies) - set(got_bodies))
            extra = len(set(got_bodies) - set(want_bodies))
            problems.append(f"{folder!r}: {len(want)} messages on the source, {len(got)} on the target "
                            f"({missing} bodies missing, {extra} unexpected)")
            continue
        key = corpus_sort_key
        if sorted(want, key=key) != sorted(got, key=key):
            differ = sum(1 for a, b in zip(sorted(want, key=key), sorted(got, key=key)) if a != b)
            meta_problems.append(f"{folder!r}: {differ} messages with other flags or internal date")
    return {
        "equal": not problems,
        "flags_and_dates_equal": not problems and not meta_problems,
        "folders_compared": folders,
        "messages": sum(len(v) for v in src.values()),
        "problems": problems,
        "flag_or_date_differences": meta_problems,
    }


def corpus_sort_key(item: tuple[str, frozenset[str], int]) -> tuple[str, list[str], int]:
    return item[0], sorted(item[1]), item[2]


def _give_tree(server: DovecotServer, root: Path) -> None:
    """Hand a Maildir tree written by the engine (as root) to the mail user."""
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            server.give(Path(top) / name)
    server.give(root)


# --------------------------------------------------------------------------- the run


@dataclass
class Config:
    users: int
    messages: int
    parallel: int
    seed: int
    security: str
    maildir: bool
    output: Path
    repeat: int = 1
    sync_env: dict[str, str] = field(default_factory=dict)
    state_dir: Path | None = None
    sync_form: str = "csv"  # one of SYNC_FORMS
    source_dir: Path | None = None  # None: _source_dir() chooses


#: Average corpus bytes per message at the default mix, with room for Dovecot's indexes.
_SOURCE_BYTES_PER_MESSAGE = 80_000


def _source_dir(cfg: Config) -> Path:
    """Where the source Dovecot keeps its mail: ``/dev/shm`` when it has room, else ``/tmp``.

    A real migration's source and target are different servers with their own disks. Sharing
    one journal-less ext4 made the source's index and cache rewrites (Dovecot caches the header
    fields the engine asks for) leave recently deleted inodes that every file the target then
    creates has to skip (``ext4:ext4_free_inode`` counted 96-216 source frees during one
    engine sync, none during the probe's), so the target's appends cost more for the engine than
    for the probe for a reason no real migration has.
    """
    if cfg.source_dir is not None:
        return cfg.source_dir
    shm = Path("/dev/shm")
    need = cfg.users * cfg.messages * _SOURCE_BYTES_PER_MESSAGE + 1e9
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free >= need:
        return shm
    return Path("/tmp")


def _port(server: DovecotServer, security: str) -> int:
    return server.ssl_port if security == "Ssl" else server.port


def _sync_args(source: DovecotServer, user: str | None, security: str, state: Path, target: Sequence[str]) -> list[str]:
    """A sync's arguments; without ``user`` the source logins come from a ``--mailboxes`` file."""
    args = [
        "--source-host", source.host, "--source-port", str(_port(source, security)),
        "--source-security", security, *(("--source-user", user) if user else ()),
        *target, "--state", str(state), *SYNC_OPTIONS,
    ]
    if security != "None":
        args.append("--accept-untrusted-certificates")
    return args


def _csv_text(rows: Sequence[tuple[str, str, str]]) -> str:
    """An IMAP migration CSV file (``EmailAddress,UserName,Password``, CRLF lines), cells quoted
    where they need it."""
    def cell(value: str) -> str:
        if any(c in value for c in ',"\r\n') or value != value.strip():
            return '"' + value.replace('"', '""') + '"'
        return value
    return "".join(",".join(map(cell, row)) + "\r\n" for row in [("EmailAddress", "UserName", "Password"), *rows])


def _write_private(path: Path, text: str) -> None:
    """Write a new file only its owner can read (it holds passwords)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
        out.write(text)


#: A target of one phase: the target arguments and extra environment of one user's process
#: (``process`` form, by user number), and of the one ``--mailboxes`` process (``csv`` form).
_ProcessTarget = Callable[[int], tuple[list[str], dict[str, str]]]


def _sync_jobs(cfg: Config, source: DovecotServer, users: Sequence[corpus.UserCorpus], names: Sequence[str],
               state: Path, csv_file: Path, process_target: _ProcessTarget,
               csv_target: tuple[list[str], dict[str, str]]) -> list[SyncJob]:
    """The processes of one sync phase, in the form of ``cfg.sync_form``.

    ``process``: one ``mailshift sync`` per user, its own source login and state file. ``csv``:
    one ``mailshift sync --mailboxes <csv_file> --parallel <cfg.parallel>`` over all users, the
    file (written here, 0600) giving each user's target address (``names``), source login and
    password; one state database for the phase.
    """
    if cfg.sync_form == "process":
        jobs = []
        for n, u in enumerate(users):
            target_args, env = process_target(n)
            jobs.append(SyncJob(u.user, [u.user],
                                _sync_args(source, u.user, cfg.security, state / f"{u.user}.db", target_args),
                                {"MAILSHIFT_SOURCE_PASSWORD": u.password, **env, **cfg.sync_env}))
        return jobs
    if not csv_file.exists():  # the re-sync reads the initial sync's file
        _write_private(csv_file, _csv_text([(names[n], u.user, u.password) for n, u in enumerate(users)]))
    target_args, env = csv_target
    args = [*_sync_args(source, None, cfg.security, state / "mailboxes.db", target_args),
            "--mailboxes", str(csv_file), "--parallel", str(cfg.parallel)]
    return [SyncJob("mailboxes", [u.user for u in users], args, {**env, **cfg.sync_env}, list(names))]


def _encoded(server: DovecotServer, folder: str) -> str:
    encoded: bytes = imap_utf7.encode(imap_name(server, folder))
    return encoded.decode("ascii")


def _ratio(value: float, limit: float) -> float:
    return round(value / limit, 3) if limit else 0.0


def _parallel_map(fn: Callable[..., Any], items: Sequence[Any], workers: int) -> list[Any]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


@contextlib.contextmanager
def _terminated_as_exit() -> Iterator[None]:
    """Turn SIGTERM into SystemExit so that cleanup runs as for Ctrl-C."""
    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _settle() -> None:
    """Flush dirty pages to disk so that a timed phase does not pay for earlier writes."""
    os.sync()
    time.sleep(0.5)


#: ext4 without a journal (this machine's root file system; common on VMs) does not hand out an
#: inode again for 60 s after its deletion (360 s while its inode-table block is still dirty): every
#: new file then scans past each such inode (``find_inode_bit``/``recently_deleted``), which costs
#: Dovecot ~40 us per message file after a quiet minute and up to ~400 us after 12,000 deletions.
#: Deleting a phase's copies right before the next timed phase therefore made whichever phase came
#: next pay for it (the target Dovecot's CPU for the same 12,000 appends ranged 3.5-9.7 s). The
#: copies are kept until the end when the disk has room; otherwise they are deleted between
#: repetitions, and the next repetition waits this long before it writes.
INODE_REUSE_PAUSE_SECONDS = 65.0

#: Disk space per repetition, in corpus sizes: probe MULTIAPPEND, probe COPY, sync -> IMAP,
#: service -> IMAP, sync -> Maildir; plus a fifth for Dovecot's indexes and Maildir overhead.
_COPIES_PER_REPETITION = 5 * 1.2


def _keep_copies(cfg: Config, corpus_bytes: int, where: Path) -> bool:
    """Whether every repetition's copies fit on the disk until the end of the run (2 GB to spare)."""
    copies = 4 + cfg.maildir
    need = cfg.repeat * copies / 5 * _COPIES_PER_REPETITION * corpus_bytes + 2e9
    return shutil.disk_usage(where).free >= need


def _journal_less_ext4(path: Path) -> bool | None:
    """True when ``path`` is on ext4 without a journal, False on ext4 with one, None otherwise."""
    try:
        dev = os.stat(path).st_dev
        name = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}").resolve().name
        return Path(f"/sys/fs/ext4/{name}/journal_task").read_text().strip() == "<none>"
    except OSError:
        return None


def _delete_trees(trees: Sequence[Path]) -> None:
    for tree in trees:
        shutil.rmtree(tree, ignore_errors=True)


def _engine_percent(resync: SyncPhase, initial: SyncPhase) -> float | None:
    """The re-sync's share of the initial sync by the engine's own clock (``seconds`` in each
    mailbox's JSON summary), summed over the mailboxes: the time without process start."""
    def total(phase: SyncPhase) -> float:
        return sum(float(s.get("seconds") or 0.0) for s in phase.reports)
    return round(100 * total(resync) / total(initial), 2) if total(initial) else None


def _best(phases: Sequence[Any]) -> Any:
    """The repetition of a phase with the shortest wall time."""
    return min(phases, key=lambda phase: phase.wall_seconds)


def _walls(phases: Sequence[Any]) -> list[float]:
    return [round(phase.wall_seconds, 3) for phase in phases]


def _target_cpus(phases: Sequence[Any]) -> list[float | None]:
    """The target Dovecot's CPU seconds in each repetition of a phase."""
    return [phase.cpu.get("target_dovecot_cpu_seconds") for phase in phases]


def bench(cfg: Config) -> dict[str, Any]:
    """Run the whole benchmark; return the figures."""
    results: dict[str, Any] = {
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "config": {
            "users": cfg.users, "messages_per_user": cfg.messages, "parallel": cfg.parallel,
            "repeat": cfg.repeat, "seed": cfg.seed, "security": cfg.security,
            "source": "Dovecot, layout slash, mail_fsync=optimized",
            "target": "Dovecot, layout dot (INBOX. prefix), mail_fsync=optimized",
            "sync_options": list(SYNC_OPTIONS),
            "sync_env": dict(cfg.sync_env),
            "state_dir": str(cfg.state_dir) if cfg.state_dir else None,
            "sync_form": cfg.sync_form,
        },
        "machine": _machine(),
    }
    with contextlib.ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="msb-", dir="/tmp"))
        stack.callback(shutil.rmtree, workdir, True)
        workers = stack.enter_context(probe.Workers(cfg.parallel))  # forked before any thread starts
        state_root = workdir
        if cfg.state_dir:
            cfg.state_dir.mkdir(parents=True, exist_ok=True)
            state_root = Path(tempfile.mkdtemp(prefix="msb-state-", dir=cfg.state_dir))
            stack.callback(shutil.rmtree, state_root, True)
        source_dir = _source_dir(cfg)
        results["config"]["source_dir"] = str(source_dir)
        source = stack.enter_context(DovecotServer(layout="slash", fsync=True, base_dir=source_dir))
        target = stack.enter_context(DovecotServer(layout="dot", fsync=True))
        reader = stack.enter_context(DovecotServer(layout="dot", fsync=True)) if cfg.maildir else None
        syncs = Syncs(workdir)
        stack.callback(syncs.close)
        say(f"servers up: source {source.root}, target {target.root}" + (f", maildir reader {reader.root}" if reader else ""))
        # An installed package carries its bytecode; a checkout run under PYTHONDONTWRITEBYTECODE
        # would otherwise compile the engine again in every sync process (~20 ms each). The
        # ``mailshift`` script enters through shim/cli.py, so that package is compiled too.
        compileall.compile_dir(str(ROOT / "engine"), quiet=1)
        compileall.compile_dir(str(ROOT / "shim"), quiet=1)

        # -- corpus -----------------------------------------------------------------------
        users: list[corpus.UserCorpus] = []
        t0 = time.monotonic()
        for n in range(cfg.users):
            name, password = f"user{n:02d}", f"pw-{n:02d}-bench"
            users.append(corpus.generate(source, name, password, n, cfg.messages, cfg.users, cfg.seed))
            say(f"corpus {name}: {users[-1].messages} messages, {users[-1].bytes / 1e6:.1f} MB")
        total_messages = sum(u.messages for u in users)
        total_bytes = sum(u.bytes for u in users)
        sizes = sorted(item.size for u in users for item in u.items)
        results["corpus"] = {
            "users": cfg.users,
            "messages": total_messages,
            "bytes": total_bytes,
            "folders_per_user": len(corpus.FOLDERS),
            "hierarchy_only_folders": list(corpus.HIERARCHY_ONLY),
            "median_message_bytes": sizes[len(sizes) // 2],
            "messages_over_1mb": sum(1 for s in sizes if s > 1_000_000),
            "largest_bytes": sizes[-3:],
            "seconds_to_write": round(time.monotonic() - t0, 1),
        }
        say(f"corpus: {total_messages} messages, {total_bytes / 1e6:.0f} MB in {time.monotonic() - t0:.1f}s")
        fetch_jobs = [
            probe.FetchJob(source.host, _port(source, cfg.security), cfg.security, u.user, u.password,
                           tuple(_encoded(source, f) for f in u.folders()))
            for u in users
        ]
        t0 = time.monotonic()
        workers.run("index", probe.fetch_user, fetch_jobs)
        results["corpus"]["seconds_to_index"] = round(time.monotonic() - t0, 1)
        say(f"source indexed (untimed first read) in {time.monotonic() - t0:.1f}s")
        keep = _keep_copies(cfg, total_bytes, target.root)
        results["config"]["copies_kept_until_end"] = keep
        results["machine"]["tmp_ext4_without_journal"] = _journal_less_ext4(target.root)
        if not keep:
            say(f"not enough disk space to keep every repetition's copies: they are deleted between repetitions, "
                f"each followed by a {INODE_REUSE_PAUSE_SECONDS:.0f}s pause (see INODE_REUSE_PAUSE_SECONDS)")
        deleted_at: float | None = None

        servers = {"source": source, "target": target}
        fetches: list[probe.PhaseResult] = []
        appends: list[probe.PhaseResult] = []
        copies: list[probe.PhaseResult] = []
        initials: list[SyncPhase] = []
        resyncs: list[SyncPhase] = []
        losts: list[SyncPhase] = []
        maildirs: list[SyncPhase] = []
        imap_targets: list[list[str]] = []  # per repetition, the target user of each source user
        service_initials: list[ServicePhase] = []
        service_resyncs: list[ServicePhase] = []
        service_targets: list[list[str]] = []
        md_targets: list[list[str]] = []
        for rep in range(cfg.repeat):
            tag = f"[{rep + 1}/{cfg.repeat}] "
            # Copies of this repetition that no later step reads (all but the last repetition's
            # sync targets); deleted at the end of the run, or of the repetition (see above).
            trash: list[Path] = []
            if deleted_at is not None:
                pause = deleted_at + INODE_REUSE_PAUSE_SECONDS - time.monotonic()
                if pause > 0:
                    say(f"{tag}waiting {pause:.0f}s for the inodes deleted after the last repetition to be reusable")
                    time.sleep(pause)
            # -- probe ------------------------------------------------------------------------
            _settle()
            meter = CpuMeter(servers)
            fetched = workers.run("fetch", probe.fetch_user, fetch_jobs)
            fetched.cpu = meter.read()
            if fetched.messages != total_messages or fetched.bytes != total_bytes:
                raise RuntimeError(f"the FETCH probe read {fetched.messages} messages / {fetched.bytes} bytes, "
                                   f"the corpus has {total_messages} / {total_bytes}")
            fetches.append(fetched)
            say(f"{tag}probe FETCH: {fetched.wall_seconds:.2f}s, {fetched.messages_per_second:.0f} msg/s, "
                f"{fetched.mb_per_second:.1f} MB/s")
            scratch = [target.add_user(f"r{rep}p{n:02d}", u.password) for n, u in enumerate(users)]
            append_jobs = [
                probe.AppendJob(
                    target.host, _port(target, cfg.security), cfg.security, scratch[n], u.password,
                    tuple(
                        (_encoded(target, folder),
                         tuple((i.path, i.flags, i.internaldate) for i in u.items if i.folder == folder))
                        for folder in u.folders()
                    ),
                )
                for n, u in enumerate(users)
            ]
            _settle()
            meter = CpuMeter(servers)
            appended = workers.run("append", probe.append_user, append_jobs)
            appended.cpu = meter.read()
            appends.append(appended)
            say(f"{tag}probe MULTIAPPEND: {appended.wall_seconds:.2f}s, {appended.messages_per_second:.0f} msg/s, "
                f"{appended.mb_per_second:.1f} MB/s, target CPU {appended.cpu['target_dovecot_cpu_seconds']:.1f}s")
            trash += [target.home(name) for name in scratch]  # not needed any more
            scratch = [target.add_user(f"r{rep}c{n:02d}", u.password) for n, u in enumerate(users)]
            copy_jobs = [
                probe.CopyJob(
                    source.host, _port(source, cfg.security), target.host, _port(target, cfg.security),
                    cfg.security, u.user, u.password, scratch[n], u.password,
                    tuple((_encoded(source, folder), _encoded(target, folder)) for folder in u.folders()),
                )
                for n, u in enumerate(users)
            ]
            _settle()
            meter = CpuMeter(servers)
            copied = workers.run("copy", probe.copy_user, copy_jobs)
            copied.cpu = meter.read()
            copies.append(copied)
            if copied.messages != total_messages or copied.bytes != total_bytes:
                raise RuntimeError(f"the COPY probe moved {copied.messages} messages / {copied.bytes} bytes, "
                                   f"the corpus has {total_messages} / {total_bytes}")
            say(f"{tag}probe COPY: {copied.wall_seconds:.2f}s, {copied.messages_per_second:.0f} msg/s, "
                f"{copied.mb_per_second:.1f} MB/s, target CPU {copied.cpu['target_dovecot_cpu_seconds']:.1f}s")
            trash += [target.home(name) for name in scratch]

            # -- sync into IMAP, then a no-change re-sync -----------------------------------------
            # csv form: target users named by address, reached as the target's master user with
            # authzid {EmailAddress} (as the service phase does); process form: their own logins.
            suffix = "@bench.test" if cfg.sync_form == "csv" else ""
            names = [target.add_user(f"r{rep}u{n:02d}{suffix}", u.password) for n, u in enumerate(users)]
            state = state_root / f"state-imap-{rep}"
            state.mkdir()
            endpoint = ["--target-host", target.host, "--target-port", str(_port(target, cfg.security)),
                        "--target-security", cfg.security]
            jobs = _sync_jobs(
                cfg, source, users, names, state, workdir / f"mailboxes-imap-{rep}.csv",
                lambda n: ([*endpoint, "--target-user", names[n]], {"MAILSHIFT_TARGET_PASSWORD": users[n].password}),
                ([*endpoint, "--target-user", target.master_user, "--target-authzid", "{EmailAddress}"],
                 {"MAILSHIFT_TARGET_PASSWORD": target.master_password}),
            )
            _settle()
            initial = syncs.run("sync_imap", cfg.sync_form, jobs, cfg.parallel, CpuMeter(servers))
            initials.append(initial)
            say(f"{tag}sync -> IMAP: {initial.wall_seconds:.2f}s, {initial.messages_per_second:.0f} msg/s, "
                f"{initial.mb_per_second:.1f} MB/s, peak RSS {initial.peak_rss_mb:.0f} MB, "
                f"target CPU {initial.cpu['target_dovecot_cpu_seconds']:.1f}s")
            _settle()
            resync = syncs.run("resync_imap", cfg.sync_form, jobs, cfg.parallel, CpuMeter(servers))
            resyncs.append(resync)
            say(f"{tag}no-change re-sync: {resync.wall_seconds:.2f}s, {resync.messages} messages copied")
            _settle()
            for leftover in state.iterdir():  # the state database lost
                leftover.unlink()
            lost = syncs.run("lost_state_imap", cfg.sync_form, jobs, cfg.parallel, CpuMeter(servers))
            losts.append(lost)
            say(f"{tag}re-sync after losing the state: {lost.wall_seconds:.2f}s, {lost.messages} messages copied, "
                f"target CPU {lost.cpu['target_dovecot_cpu_seconds']:.1f}s")
            imap_targets.append(names)  # the last repetition's copies are checked

            # -- the migration service: initial sync, then a no-change incremental sync ----------
            names = [target.add_user(f"r{rep}s{n:02d}@bench.test", u.password) for n, u in enumerate(users)]
            instance = state_root / f"service-{rep}"
            service_initial, service_resync = run_service(cfg, instance, source, target, users, names, servers, tag)
            service_initials.append(service_initial)
            service_resyncs.append(service_resync)
            service_targets.append(names)

            # -- sync into Maildir ----------------------------------------------------------------
            if reader:
                names = [reader.add_user(f"r{rep}u{n:02d}{suffix}", u.password) for n, u in enumerate(users)]
                state = state_root / f"state-maildir-{rep}"
                state.mkdir()
                template = str(reader.maildir("{EmailAddress}"))  # <reader>/home/{EmailAddress}/Maildir
                wrong = [name for name in names if template.replace("{EmailAddress}", name) != str(reader.maildir(name))]
                if wrong:
                    raise RuntimeError(f"the Maildir template {template} does not give the reader's Maildir of {wrong}")
                jobs = _sync_jobs(
                    cfg, source, users, names, state, workdir / f"mailboxes-maildir-{rep}.csv",
                    lambda n: (["--target-maildir", str(reader.maildir(names[n]))], {}),
                    (["--target-maildir", template], {}),
                )
                _settle()
                maildir = syncs.run("sync_maildir", cfg.sync_form, jobs, cfg.parallel, CpuMeter({"source": source}))
                maildirs.append(maildir)
                say(f"{tag}sync -> Maildir: {maildir.wall_seconds:.2f}s, {maildir.messages_per_second:.0f} msg/s, "
                    f"{maildir.mb_per_second:.1f} MB/s, peak RSS {maildir.peak_rss_mb:.0f} MB")
                md_targets.append(names)

            if rep < cfg.repeat - 1:
                trash += [target.home(name) for name in imap_targets[-1] + service_targets[-1]]
                if reader:
                    trash += [reader.home(name) for name in md_targets[-1]]
                if not keep:
                    _delete_trees(trash)
                    _settle()
                    deleted_at = time.monotonic()

        # -- the figures: best of the repetitions ---------------------------------------------
        fetched, appended = _best(fetches), _best(appends)
        limit = fetched if fetched.messages_per_second <= appended.messages_per_second else appended
        results["probe"] = {
            "fetch": fetched.as_dict() | {"wall_seconds_all": _walls(fetches)},
            "append": appended.as_dict() | {"wall_seconds_all": _walls(appends),
                                            "target_dovecot_cpu_seconds_all": _target_cpus(appends)},
            "copy": _best(copies).as_dict() | {"wall_seconds_all": _walls(copies),
                                               "target_dovecot_cpu_seconds_all": _target_cpus(copies)},
            "limit": {
                "bound_by": "fetch" if limit is fetched else "append",
                "messages_per_second": round(limit.messages_per_second, 1),
                "mb_per_second": round(limit.mb_per_second, 2),
                "wall_seconds": round(limit.wall_seconds, 3),
            },
        }
        initial, resync = _best(initials), _best(resyncs)
        results["sync_imap"] = initial.as_dict() | {
            "wall_seconds_all": _walls(initials),
            "target_dovecot_cpu_seconds_all": _target_cpus(initials),
            "ratio_to_probe_limit": _ratio(initial.messages_per_second, limit.messages_per_second),
            "ratio_to_probe_limit_mb": _ratio(initial.mb_per_second, limit.mb_per_second),
            "ratio_to_probe_copy": _ratio(initial.messages_per_second, _best(copies).messages_per_second),
            "peak_rss_mb": round(max(p.peak_rss_mb for p in initials), 1),
            "failures": [f for p in initials for f in p.failures],
        }
        results["resync_imap"] = resync.as_dict() | {
            "wall_seconds_all": _walls(resyncs),
            "percent_of_initial": round(100 * resync.wall_seconds / initial.wall_seconds, 2) if initial.wall_seconds else None,
            "engine_percent_of_initial": _engine_percent(resync, initial),
            "messages": max(p.messages for p in resyncs),
            "peak_rss_mb": round(max(p.peak_rss_mb for p in resyncs), 1),
            "failures": [f for p in resyncs for f in p.failures],
        }
        lost = _best(losts)
        results["lost_state_imap"] = lost.as_dict() | {
            "wall_seconds_all": _walls(losts),
            "percent_of_initial": round(100 * lost.wall_seconds / initial.wall_seconds, 2) if initial.wall_seconds else None,
            "messages": max(p.messages for p in losts),
            "messages_found": min(sum(r.get("messages_found", 0) for r in p.reports) for p in losts),
            "peak_rss_mb": round(max(p.peak_rss_mb for p in losts), 1),
            "failures": [f for p in losts for f in p.failures],
        }
        service_initial, service_resync = _best(service_initials), _best(service_resyncs)
        results["service_imap"] = service_initial.as_dict() | {
            "wall_seconds_all": _walls(service_initials),
            "target_dovecot_cpu_seconds_all": _target_cpus(service_initials),
            "ratio_to_probe_limit": _ratio(service_initial.messages_per_second, limit.messages_per_second),
            "ratio_to_probe_copy": _ratio(service_initial.messages_per_second, _best(copies).messages_per_second),
            "ratio_to_sync_imap": _ratio(service_initial.messages_per_second, initial.messages_per_second),
            "failures": [f for p in service_initials for f in p.failures],
        }
        results["service_resync"] = service_resync.as_dict() | {
            "wall_seconds_all": _walls(service_resyncs),
            "percent_of_initial": round(100 * service_resync.wall_seconds / service_initial.wall_seconds, 2)
            if service_initial.wall_seconds else None,
            "engine_percent_of_initial": round(100 * service_resync.engine_seconds / service_initial.engine_seconds, 2)
            if service_initial.engine_seconds else None,
            "messages": max(p.messages for p in service_resyncs),
            "failures": [f for p in service_resyncs for f in p.failures],
        }
        if maildirs:
            maildir = _best(maildirs)
            results["sync_maildir"] = maildir.as_dict() | {
                "wall_seconds_all": _walls(maildirs),
                "ratio_to_probe_fetch": _ratio(maildir.messages_per_second, fetched.messages_per_second),
                "peak_rss_mb": round(max(p.peak_rss_mb for p in maildirs), 1),
                "failures": [f for p in maildirs for f in p.failures],
            }

        # -- checking the last repetition's copies ----------------------------------------------
        say("checking the copies (snapshots of every mailbox) ...")
        t0 = time.monotonic()
        verify: dict[str, Any] = {}
        source_snaps = _parallel_map(lambda u: snapshot(source, u.user), users, 3)
        target_snaps = _parallel_map(lambda name: snapshot(target, name), imap_targets[-1], 3)
        verify["imap"] = {
            u.user: compare(source_snaps[n], target_snaps[n],
                            folder_mapping(initials[-1].reports[n], source, target.prefix, target.separator))
            for n, u in enumerate(users)
        }
        del target_snaps
        last_service = service_initials[-1]
        service_snaps = _parallel_map(lambda name: snapshot(target, name), service_targets[-1], 3)
        verify["service"] = {}
        for n, u in enumerate(users):
            skipped = _skipped_bodies(u, last_service, n)
            check = compare(_without(source_snaps[n], skipped), service_snaps[n],
                            folder_mapping(initials[-1].reports[n], source, target.prefix, target.separator))
            check["skipped_as_too_large"] = len(skipped)
            verify["service"][u.user] = check
        del service_snaps
        if reader and maildirs:
            for name in md_targets[-1]:
                _give_tree(reader, reader.maildir(name))
            md_snaps = _parallel_map(lambda name: snapshot(reader, name), md_targets[-1], 3)
            verify["maildir"] = {
                u.user: compare(source_snaps[n], md_snaps[n], folder_mapping(maildirs[-1].reports[n], source, "", "."))
                for n, u in enumerate(users)
            }
        verify["seconds"] = round(time.monotonic() - t0, 1)
        results["verify"] = verify
        say(f"checked in {verify['seconds']}s")
    results["goals"] = _goals(results)
    results["seconds_total"] = round(time.monotonic() - _started, 1)
    results["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    results["machine"]["engine_changed_during_run"] = _engine_digest() != results["machine"]["engine_digest"]
    if results["machine"]["engine_changed_during_run"]:
        results["machine"]["commit_end"] = _commit()
    return results


def _commit() -> str:
    """The checked-out commit, marked when engine/ has uncommitted changes."""
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "engine"],
                                    capture_output=True, text=True, timeout=10).stdout.strip())
    except OSError:
        return "?"
    return (commit or "?") + ("+engine-changes" if dirty else "")


def _engine_digest() -> str:
    """A hash of the engine's sources, to notice an engine changed while the benchmark ran."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "engine").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _machine() -> dict[str, Any]:
    try:
        version = subprocess.run([str(DOVECOT), "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        version = "?"
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "dovecot": version,
        "commit": _commit(),
        "engine_digest": _engine_digest(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }


def _goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    sync = results["sync_imap"]
    resync = results["resync_imap"]
    verify = results["verify"]
    rows = [
        {
            "goal": "initial sync >= 0.8 x probe limit",
            "measured": sync["ratio_to_probe_limit"],
            "target": GOAL_RATIO,
            "met": sync["ratio_to_probe_limit"] >= GOAL_RATIO and not sync["failures"],
        },
        {
            "goal": "no-change re-sync <= 2 % of the initial time",
            "measured": resync["percent_of_initial"],
            "target": GOAL_RESYNC_PERCENT,
            "met": resync["percent_of_initial"] is not None and resync["percent_of_initial"] <= GOAL_RESYNC_PERCENT
            and resync["messages"] == 0 and not resync["failures"],
        },
    ]
    if "lost_state_imap" in results:
        lost = results["lost_state_imap"]
        rows.append({
            "goal": "re-sync after losing the state <= 20 % of the initial, 0 copied",
            "measured": lost["percent_of_initial"],
            "target": GOAL_LOST_STATE_PERCENT,
            "met": lost["percent_of_initial"] is not None and lost["percent_of_initial"] <= GOAL_LOST_STATE_PERCENT
            and lost["messages"] == 0 and not lost["failures"],
        })
    if "service_resync" in results:
        service = results["service_resync"]
        rows.append({
            "goal": "service: no-change re-sync <= 2 % of the initial",
            "measured": service["percent_of_initial"],
            "target": GOAL_RESYNC_PERCENT,
            "met": service["percent_of_initial"] is not None and service["percent_of_initial"] <= GOAL_RESYNC_PERCENT
            and service["messages"] == 0 and not service["failures"] and not results["service_imap"]["failures"],
        })
    for key in ("sync_imap", "resync_imap", "sync_maildir"):
        if key in results:
            rss = results[key]["peak_rss_mb"]
            rows.append({"goal": f"peak RSS <= 150 MB per sync process ({key})", "measured": rss,
                         "target": GOAL_RSS_MB, "met": rss <= GOAL_RSS_MB})
    for side in ("imap", "service", "maildir"):
        if side in verify:
            good = sum(1 for v in verify[side].values() if v["equal"])
            rows.append({"goal": f"copies equal the source ({side} target)", "measured": f"{good}/{len(verify[side])}",
                         "target": "all", "met": good == len(verify[side])})
    return rows


# --------------------------------------------------------------------------- printing


def _cell(value: float | None, width: int) -> str:
    return f"{value:>{width}.1f}" if value is not None else f"{'-':>{width}}"


def _mark(met: bool) -> str:
    return "met" if met else "MISSED"


def _per_process(results: dict[str, Any]) -> list[str]:
    """The "Per sync process" table: each process of the fastest run of each sync phase, and in the
    ``csv`` form (one process for all mailboxes) each mailbox's engine seconds and messages."""
    keys = [key for key in ("sync_imap", "resync_imap", "sync_maildir") if key in results]
    phases = " | ".join({"sync_imap": "initial sync -> IMAP", "resync_imap": "re-sync",
                         "sync_maildir": "sync -> Maildir"}[key] for key in keys)
    sizes = {m["user"]: m for m in results["sync_imap"].get("mailboxes", [])}
    lines = ["", f"Per sync process (fastest run) -- {phases}: seconds, peak RSS, CPU s"]
    per: dict[str, list[str]] = defaultdict(list)
    for key in keys:
        for proc in results[key].get("processes", []):
            per[proc["process"]].append(
                f"{proc['process_seconds']:6.2f}s {proc['peak_rss_mb']:4.0f} MB {proc['cpu_seconds']:5.2f}")
    csv_form = results["config"].get("sync_form") == "csv"
    for label, cells in per.items():
        if csv_form:
            head = f"one process, {len(sizes)} mailboxes, {results['config']['parallel']} at a time:"
        else:
            m = sizes.get(label, {})
            head = f"{label} {m.get('messages_copied', 0):>5} msgs {m.get('bytes_copied', 0) / 1e6:6.1f} MB:"
        lines.append(f"  {head} " + " | ".join(cells))
    if csv_form:
        lines += ["", f"Per mailbox in that process (fastest run) -- {phases}: engine seconds, messages copied"]
        per = defaultdict(list)
        for key in keys:
            for m in results[key].get("mailboxes", []):
                per[m["user"]].append(f"{m['engine_seconds'] or 0:7.3f}s {m['messages_copied']:>5} msgs")
        for user, cells in per.items():
            m = sizes.get(user, {})
            lines.append(f"  {user} {(m.get('email') or ''):<20} {m.get('bytes_copied', 0) / 1e6:6.1f} MB: "
                         + " | ".join(cells))
    return lines


def report(results: dict[str, Any]) -> str:
    """The figures as text tables."""
    c, p, cfg, machine = results["corpus"], results["probe"], results["config"], results["machine"]
    lines = [
        "",
        f"Mailshift benchmark: {c['users']} users, {c['messages']} messages, {c['bytes'] / 1e6:.0f} MB "
        f"(median {c['median_message_bytes'] / 1024:.0f} KB, {c['messages_over_1mb']} over 1 MB, largest "
        f"{c['largest_bytes'][-1] / 2**20:.0f} MiB); {cfg['parallel']} users at a time; security {cfg['security']}; "
        f"best of {cfg['repeat']}",
        "mailshift sync form: " + (
            f"one process for all mailboxes (--mailboxes CSV --parallel {cfg['parallel']})"
            if cfg.get("sync_form", "process") == "csv" else
            f"one process per mailbox, {cfg['parallel']} processes at a time (--sync-form process)"),
        f"machine: {machine['cpus']} CPUs, Dovecot {machine['dovecot'].split()[0]}, Python {machine['python']}, "
        f"commit {machine['commit']}, load average {machine['loadavg_start'][0]} at start, "
        f"{machine['loadavg_end'][0]} at end" + (f"; sync env {cfg['sync_env']}" if cfg["sync_env"] else ""),
        "",
        f"{'phase':<31}{'wall s':>8}{'msg/s':>8}{'MB/s':>8}{'x limit':>8}{'peak RSS':>10}"
        f"{'client':>8}{'source':>8}{'target':>8}{'other':>7}   wall s of each run",
        f"{'':<73}{'(CPU seconds)':^31}",
    ]

    def cpu(d: dict[str, Any], key: str) -> str:
        return (f"{_cell(d.get(key), 8)}{_cell(d.get('source_dovecot_cpu_seconds'), 8)}"
                f"{_cell(d.get('target_dovecot_cpu_seconds'), 8)}{_cell(d.get('other_cpu_seconds'), 7)}")

    def walls(d: dict[str, Any]) -> str:
        return "   " + " ".join(f"{w:.2f}" for w in d.get("wall_seconds_all", []))

    def row(label: str, d: dict[str, Any], ratio: str, rss: float | None, key: str) -> str:
        return (f"{label:<31}{d['wall_seconds']:>8.2f}{d['messages_per_second']:>8.0f}{d['mb_per_second']:>8.1f}"
                f"{ratio:>8}{(f'{rss:.0f} MB' if rss is not None else '-'):>10}{cpu(d, key)}{walls(d)}")

    lines.append(row("probe FETCH (source)", p["fetch"], "", None, "client_cpu_seconds"))
    lines.append(row("probe MULTIAPPEND (target)", p["append"], "", None, "client_cpu_seconds"))
    lim = p["limit"]
    lines.append(f"{'probe limit: ' + lim['bound_by']:<31}{lim['wall_seconds']:>8.2f}"
                 f"{lim['messages_per_second']:>8.0f}{lim['mb_per_second']:>8.1f}{'1.00':>8}")
    lines.append(row("probe COPY (both at once)", p["copy"],
                     f"{p['copy']['messages_per_second'] / lim['messages_per_second']:.2f}", None, "client_cpu_seconds"))
    s = results["sync_imap"]
    lines.append(row("mailshift sync -> IMAP", s, f"{s['ratio_to_probe_limit']:.2f}", s["peak_rss_mb"], "engine_cpu_seconds")
                 + f"  = {s['ratio_to_probe_copy']:.2f} x probe COPY")
    r = results["resync_imap"]
    lines.append(f"{'  re-sync, nothing new':<31}{r['wall_seconds']:>8.2f}{'':>8}{'':>8}"
                 f"{r['percent_of_initial']:>7.1f}%{r['peak_rss_mb']:>7.0f} MB{cpu(r, 'engine_cpu_seconds')}{walls(r)}")
    if r.get("engine_percent_of_initial") is not None:
        lines.append(f"    by the engine's own clock (sum over mailboxes, no process start): "
                     f"{r['engine_percent_of_initial']:.1f} % of the initial")
    if "lost_state_imap" in results:
        q = results["lost_state_imap"]
        lines.append(f"{'  re-sync, state lost':<31}{q['wall_seconds']:>8.2f}{'':>8}{'':>8}"
                     f"{q['percent_of_initial']:>7.1f}%{q['peak_rss_mb']:>7.0f} MB{cpu(q, 'engine_cpu_seconds')}{walls(q)}"
                     f"  {q['messages']} copied, {q['messages_found']} found on the target")
    if "service_imap" in results:
        v, w = results["service_imap"], results["service_resync"]
        lines.append(row("service -> IMAP (threads)", v, f"{v['ratio_to_probe_limit']:.2f}", None, "engine_cpu_seconds")
                     + f"  = {v['ratio_to_probe_copy']:.2f} x probe COPY, {v['ratio_to_sync_imap']:.2f} x mailshift sync")
        lines.append(f"{'  re-sync, nothing new':<31}{w['wall_seconds']:>8.2f}{'':>8}{'':>8}"
                     f"{w['percent_of_initial']:>7.1f}%{'-':>10}{cpu(w, 'engine_cpu_seconds')}{walls(w)}")
        if w.get("engine_percent_of_initial") is not None:
            lines.append(f"    by the engine's own clock (sum over users): {w['engine_percent_of_initial']:.1f} % of the initial")
        if v["messages_skipped"]:
            lines.append(f"    the service skipped {v['messages_skipped']} message(s) over its fixed "
                         f"{engine_defaults.MAX_ITEM_BYTES // 2**20} MiB item limit (LargeItemLimit Unlimited); "
                         "mailshift sync copied them (--max-item-size 50MB)")
    if "sync_maildir" in results:
        m = results["sync_maildir"]
        lines.append(row("mailshift sync -> Maildir", m, f"({m['ratio_to_probe_fetch']:.2f})", m["peak_rss_mb"],
                         "engine_cpu_seconds"))
    lines += [
        "  x limit: rate / probe limit (for the re-sync: its time as % of the initial sync's;",
        "  for Maildir, in parentheses: rate / probe FETCH, the only server side it has)",
    ]
    if machine.get("engine_changed_during_run"):
        lines.append(f"  WARNING: engine/ changed while the benchmark ran (commit {machine['commit']} at the start, "
                     f"{machine.get('commit_end')} at the end): the runs may have measured different engines")
    cpus = machine["cpus"] or 1
    for label, d in (("probe FETCH", p["fetch"]), ("probe MULTIAPPEND", p["append"]), ("probe COPY", p["copy"]),
                     ("sync -> IMAP", results["sync_imap"]), ("re-sync", results["resync_imap"]),
                     ("service -> IMAP", results.get("service_imap")), ("service re-sync", results.get("service_resync")),
                     ("sync -> Maildir", results.get("sync_maildir"))):
        if d and d.get("other_cpu_seconds") is not None and d["wall_seconds"]:
            share = d["other_cpu_seconds"] / (d["wall_seconds"] * cpus)
            if share > 0.1:
                lines.append(f"  WARNING: other work used {100 * share:.0f} % of the CPUs during the fastest "
                             f"{label} run: its figures are pessimistic")
    lines += _per_process(results)
    if "service_imap" in results:
        lines += ["", "Per user in the service (fastest run) -- initial | re-sync: engine seconds, messages copied, skipped"]
        for a, b in zip(results["service_imap"]["users"], results["service_resync"]["users"]):
            lines.append(f"  {a['user']:<20} {a['engine_seconds'] or 0:6.2f}s {a['messages_copied']:>5} msgs "
                         f"{a['messages_skipped']} skipped | {b['engine_seconds'] or 0:6.3f}s {b['messages_copied']:>5} msgs")
    for key in ("sync_imap", "resync_imap", "service_imap", "service_resync", "sync_maildir"):
        for failure in results.get(key, {}).get("failures", []):
            lines.append(f"  FAILED ({key}) {failure}")
    lines += ["", "Copies checked against the source (bodies per folder; flags and dates reported apart):"]
    for side, per_user in results["verify"].items():
        if side == "seconds":
            continue
        equal = sum(1 for v in per_user.values() if v["equal"])
        exact = sum(1 for v in per_user.values() if v["flags_and_dates_equal"])
        lines.append(f"  {side} target: {equal}/{len(per_user)} mailboxes equal, "
                     f"{exact}/{len(per_user)} also in flags and internal dates"
                     + (f" (without {sum(v.get('skipped_as_too_large', 0) for v in per_user.values())} message(s) "
                        "the service skipped as too large)" if side == "service" else ""))
        for user, v in per_user.items():
            for problem in v["problems"] + v["flag_or_date_differences"]:
                lines.append(f"    {user}: {problem}")
    lines += ["", f"{'goal':<52}{'measured':>10}{'goal':>8}  verdict"]
    for g in results["goals"]:
        lines.append(f"{g['goal']:<52}{str(g['measured']):>10}{str(g['target']):>8}  {_mark(g['met'])}")
    lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=6, help="mailboxes (default 6)")
    parser.add_argument("--messages", type=int, default=5000, help="messages per mailbox (default 5000)")
    parser.add_argument("--parallel", type=int, default=2,
                        help="users at a time, for the probe and the syncs (default 2: the best aggregate on 2 cores)")
    parser.add_argument("--seed", type=int, default=corpus.DEFAULT_SEED, help="corpus seed")
    parser.add_argument("--security", choices=("None", "Ssl", "Tls"), default="None",
                        help="transport for probe and syncs (default None: plain IMAP on loopback)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="run the timed phases this many times and report the fastest (default 3)")
    parser.add_argument("--no-maildir", action="store_true", help="skip the sync into Maildir trees")
    parser.add_argument("--sync-form", choices=SYNC_FORMS, default="csv",
                        help="csv (default): each mailshift sync phase is one process over a migration CSV file "
                        "(--mailboxes, --parallel mailboxes at a time); process: one process per mailbox, "
                        "--parallel processes at a time")
    parser.add_argument("--sync-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment of the sync processes, for what-if runs (e.g. PYTHONOPTIMIZE=1)")
    parser.add_argument("--state-dir", type=Path, metavar="DIR",
                        help="where the syncs' state databases go (default: the benchmark's temporary folder)")
    parser.add_argument("--source-dir", type=Path, metavar="DIR",
                        help="where the source Dovecot keeps its mail (default /dev/shm when it has room, else /tmp): "
                        "another file system than the target's, as in a real migration")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    if args.users < 1 or args.messages < 10 or args.parallel < 1 or args.repeat < 1:
        parser.error("--users, --parallel and --repeat must be >= 1, --messages >= 10")
    if any("=" not in item for item in args.sync_env):
        parser.error("--sync-env takes NAME=VALUE")
    missing = dovecot_missing_message()
    if missing:
        print(missing, file=sys.stderr)
        return 2
    cfg = Config(args.users, args.messages, args.parallel, args.seed, args.security, not args.no_maildir, args.output,
                 args.repeat, dict(item.split("=", 1) for item in args.sync_env), args.state_dir, args.sync_form, args.source_dir)
    try:
        with _terminated_as_exit():
            results = bench(cfg)
    except KeyboardInterrupt:
        print("interrupted: servers, processes and temporary folders are cleaned up", file=sys.stderr)
        return 130
    cfg.output.parent.mkdir(parents=True, exist_ok=True)
    cfg.output.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(report(results))
    print(f"figures written to {cfg.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
