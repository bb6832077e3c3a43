"""``mailshift sync`` as an administrator runs it: a process, a password in the environment."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import NewUser
from tests.servers.dovecot import DovecotServer
from tests.integration.test_sync import content
from tests.servers.mailbox import fill, snapshot

pytestmark = pytest.mark.integration

PASSWORD = "Pa$$word1-cli"


def mailshift(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


def _copied_so_far(state: Path) -> int:
    if not state.exists():
        return 0
    db = sqlite3.connect(state, timeout=5)
    try:
        return int(db.execute("SELECT count(*) FROM message_map").fetchone()[0])
    except sqlite3.OperationalError:  # the schema is being created
        return 0
    finally:
        db.close()


def source_args(server: DovecotServer, user: str) -> list[str]:
    return ["--source-host", server.host, "--source-port", str(server.port), "--source-security", "None", "--source-user", user]


def test_sync_json_summary_and_incremental_rerun(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, tmp_path: Path
) -> None:
    user = f"cli.{tmp_path.name[-12:]}".replace("_", "-")
    dovecot_slash.add_user(user, PASSWORD)
    target_user, _ = new_user(dovecot_dot)
    fill(dovecot_slash, user, {"INBOX": 12, "Sent Items": 3, "Junk Mail": 2})
    env = dict(os.environ, MAILSHIFT_SOURCE_PASSWORD=PASSWORD, MAILSHIFT_TARGET_PASSWORD=dovecot_dot.master_password)
    args = [
        "sync", *source_args(dovecot_slash, user),
        "--target-host", dovecot_dot.host, "--target-port", str(dovecot_dot.port), "--target-security", "none",
        "--target-user", "{EmailAddress}*" + dovecot_dot.master_user, "--email", target_user,
        "--exclude-folder", "Junk Mail", "--state", str(tmp_path / "state.db"), "--json",
    ]
    first = mailshift(*args, env=env)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["outcome"] == "Synced"
    assert summary["messages_copied"] == 15
    assert summary["excluded"] == [{"source": "Junk Mail", "pattern": "Junk Mail"}]
    assert {f["source"]: f["target"] for f in summary["folders"]} == {"INBOX": "INBOX", "Sent Items": "INBOX.Sent Items"}
    assert summary["skipped_items"] == []
    second = json.loads(mailshift(*args, env=env).stdout)
    assert second["messages_copied"] == 0
    copied = snapshot(dovecot_dot, target_user)
    assert copied["INBOX"] == snapshot(dovecot_slash, user)["INBOX"]
    for output in (first.stdout, first.stderr):
        assert PASSWORD not in output and dovecot_dot.master_password not in output
    state = (tmp_path / "state.db").read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("state.db-*"))
    assert PASSWORD.encode() not in state and dovecot_dot.master_password.encode() not in state
    rows = sqlite3.connect(tmp_path / "state.db").execute("SELECT count(*) FROM message_map").fetchone()[0]
    assert rows == 15


def test_usage_errors_exit_2_with_a_clear_message(dovecot_slash: DovecotServer, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILSHIFT_")}
    base = ["sync", *source_args(dovecot_slash, "nobody"), "--state", str(tmp_path / "s.db")]
    missing = mailshift(*base, "--target-maildir", str(tmp_path / "md"), env=env)
    assert missing.returncode == 2
    assert "MAILSHIFT_SOURCE_PASSWORD, which is not set" in missing.stderr
    env["MAILSHIFT_SOURCE_PASSWORD"] = "x"
    no_target = mailshift(*base, env=env)
    assert no_target.returncode == 2 and "--target-maildir PATH, or --target-host" in no_target.stderr
    bad_pattern = mailshift(*base, "--target-maildir", str(tmp_path / "md"), "--exclude-folder", "Arch*ve", env=env)
    assert bad_pattern.returncode == 2 and "Arch*ve" in bad_pattern.stderr
    bad_limit = mailshift(*base, "--target-maildir", str(tmp_path / "md"), "--bad-item-limit", "lots", env=env)
    assert bad_limit.returncode == 2 and "Unlimited or a number from 0 to 2147483647" in bad_limit.stderr


def test_refused_login_exits_1_without_echoing_the_password(
    dovecot_slash: DovecotServer, new_user: NewUser, tmp_path: Path
) -> None:
    user, _ = new_user(dovecot_slash)
    env = dict(os.environ, MAILSHIFT_SOURCE_PASSWORD="Wr0ng-Secret!")
    result = mailshift(
        "sync", *source_args(dovecot_slash, user), "--target-maildir", str(tmp_path / "md"),
        "--state", str(tmp_path / "s.db"), env=env,
    )
    assert result.returncode == 1
    assert "Failed" in result.stdout and "refused the credentials" in result.stdout
    assert "Wr0ng-Secret!" not in result.stdout + result.stderr


def test_sigterm_stops_at_a_safe_point_and_a_rerun_finishes(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, tmp_path: Path
) -> None:
    user, password = new_user(dovecot_slash)
    target_user, _ = new_user(dovecot_dot)
    fill(dovecot_slash, user, {"INBOX": 6000}, size=3000)
    env = dict(os.environ, MAILSHIFT_SOURCE_PASSWORD=password, MAILSHIFT_TARGET_PASSWORD=dovecot_dot.master_password)
    args = [
        sys.executable, "-m", "engine.cli", "sync", *source_args(dovecot_slash, user),
        "--target-host", dovecot_dot.host, "--target-port", str(dovecot_dot.port), "--target-security", "None",
        "--target-user", dovecot_dot.master_user, "--target-authzid", target_user,
        "--state", str(tmp_path / "state.db"), "--json",
    ]
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 60
    while _copied_so_far(tmp_path / "state.db") == 0:  # wait until the first chunks are recorded
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.01)
    process.terminate()
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 4
    first = json.loads(out)
    assert first["outcome"] == "Stopped" and 0 < first["messages_copied"] < 6000
    rerun = mailshift(*args[3:], env=env)
    assert rerun.returncode == 0
    assert json.loads(rerun.stdout)["messages_copied"] == 6000 - first["messages_copied"]
    assert snapshot(dovecot_dot, target_user)["INBOX"] == snapshot(dovecot_slash, user)["INBOX"]


@pytest.mark.parametrize("security", ["Ssl", "Tls"])
def test_self_signed_certificate_needs_accept_untrusted_certificates(
    dovecot_slash: DovecotServer, new_user: NewUser, tmp_path: Path, security: str
) -> None:
    user, password = new_user(dovecot_slash)
    fill(dovecot_slash, user, {"INBOX": 3})
    port = dovecot_slash.ssl_port if security == "Ssl" else dovecot_slash.port
    env = dict(os.environ, MAILSHIFT_SOURCE_PASSWORD=password)
    args = [
        "sync", "--source-host", "localhost", "--source-port", str(port), "--source-security", security,
        "--source-user", user, "--target-maildir", str(tmp_path / "md"), "--state", str(tmp_path / "s.db"), "--json",
    ]
    refused = mailshift(*args, env=env)
    assert refused.returncode == 1
    summary = json.loads(refused.stdout)
    assert summary["outcome"] == "Failed" and "not trusted" in summary["error"]
    assert summary["messages_copied"] == 0
    accepted = mailshift(*args, "--accept-untrusted-certificates", env=env)
    assert accepted.returncode == 0, accepted.stderr
    assert json.loads(accepted.stdout)["messages_copied"] == 3


def _csv(rows: list[tuple[str, str, str]]) -> str:
    quoted = ['"' + cell.replace('"', '""') + '"' for row in rows for cell in row]
    lines = [",".join(quoted[i : i + 3]) for i in range(0, len(quoted), 3)]
    return "EmailAddress,UserName,Password\r\n" + "\r\n".join(lines) + "\r\n"


def test_mailboxes_csv_copies_every_mailbox_in_one_process(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser, tmp_path: Path
) -> None:
    """``--mailboxes`` takes the CSV file New-MigrationBatch reads: each row's source login,
    each mailbox into its own target account, two at a time, one failure not stopping the
    others, and the same state keys as one-mailbox runs (a later single run continues)."""
    sources = [new_user(dovecot_slash) for _ in range(3)]
    for n, (user, _) in enumerate(sources):
        fill(dovecot_slash, user, {"INBOX": 20 + n, "Sent Items": 3, "Projekte/Überblick": 2 + n})
    emails = [f"{user}@cli.test" for user, _ in sources]
    for email in emails:
        dovecot_dot.add_user(email, "unused-" + email)
    rows = [(emails[0], sources[0][0], sources[0][1]), (emails[1], sources[1][0], sources[1][1]),
            (emails[2], sources[2][0], "Wr0ng,\"pass\"")]
    mailboxes = tmp_path / "users.csv"
    mailboxes.write_text(_csv(rows), encoding="utf-8")
    env = dict(os.environ, MAILSHIFT_TARGET_PASSWORD=dovecot_dot.master_password)
    env.pop("MAILSHIFT_SOURCE_PASSWORD", None)  # the file carries the source passwords
    target = ["--target-host", dovecot_dot.host, "--target-port", str(dovecot_dot.port), "--target-security", "None",
              "--target-user", "{EmailAddress}*" + dovecot_dot.master_user]
    state = tmp_path / "state.db"
    args = ["sync", "--source-host", dovecot_slash.host, "--source-port", str(dovecot_slash.port),
            "--source-security", "None", *target, "--mailboxes", str(mailboxes), "--parallel", "2",
            "--state", str(state), "--json"]
    first = mailshift(*args, env=env)
    assert first.returncode == 1, first.stderr  # one mailbox failed
    entries = json.loads(first.stdout)["mailboxes"]
    assert [e["email"] for e in entries] == emails
    assert [e["outcome"] for e in entries] == ["Synced", "Synced", "Failed"]
    assert [e["messages_copied"] for e in entries] == [25, 27, 0]
    assert "refused the credentials" in entries[2]["error"]
    for (user, _), email in zip(sources[:2], emails):
        assert content(snapshot(dovecot_dot, email)) == content(snapshot(dovecot_slash, user))
    secrets_ = [sources[0][1], sources[1][1], "Wr0ng", dovecot_dot.master_password]
    stored = state.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("state.db-*"))
    for secret in secrets_:
        assert secret not in first.stdout + first.stderr
        assert secret.encode() not in stored

    rows[2] = (emails[2], sources[2][0], sources[2][1])
    mailboxes.write_text(_csv(rows), encoding="utf-8")
    second = mailshift(*args, env=env)
    assert second.returncode == 0, second.stderr
    assert [e["messages_copied"] for e in json.loads(second.stdout)["mailboxes"]] == [0, 0, 29]

    fill(dovecot_slash, sources[1][0], {"INBOX": [b"Subject: late\r\n\r\nnew one\r\n"]})
    single = mailshift(
        "sync", *source_args(dovecot_slash, sources[1][0]), *target, "--email", emails[1],
        "--state", str(state), "--json", env=dict(env, MAILSHIFT_SOURCE_PASSWORD=sources[1][1]),
    )
    assert single.returncode == 0, single.stderr
    assert json.loads(single.stdout)["messages_copied"] == 1  # the same copy, continued


def test_mailboxes_csv_usage_errors_and_maildir_template(
    dovecot_slash: DovecotServer, new_user: NewUser, tmp_path: Path
) -> None:
    (user_a, password_a), (user_b, password_b) = new_user(dovecot_slash), new_user(dovecot_slash)
    fill(dovecot_slash, user_a, {"INBOX": 4})
    fill(dovecot_slash, user_b, {"INBOX": 2, "Archive": 1})
    mailboxes = tmp_path / "users.csv"
    mailboxes.write_text(_csv([("a@cli.test", user_a, password_a), ("b@cli.test", user_b, password_b)]), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILSHIFT_")}
    base = ["sync", "--source-host", dovecot_slash.host, "--source-port", str(dovecot_slash.port),
            "--source-security", "None", "--state", str(tmp_path / "s.db")]
    template = str(tmp_path / "mail" / "{EmailAddress}" / "Maildir")

    same_target = mailshift(*base, "--mailboxes", str(mailboxes), "--target-maildir", str(tmp_path / "one"), env=env)
    assert same_target.returncode == 2 and "needs its own target: put {EmailAddress}" in same_target.stderr
    with_user = mailshift(*base, "--mailboxes", str(mailboxes), "--source-user", user_a, "--target-maildir", template, env=env)
    assert with_user.returncode == 2 and "--source-user cannot be combined with --mailboxes" in with_user.stderr
    absent = mailshift(*base, "--mailboxes", str(tmp_path / "nope.csv"), "--target-maildir", template, env=env)
    assert absent.returncode == 2 and "cannot read the mailbox list" in absent.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text(f"EmailAddress,UserName\r\na@cli.test,{user_a}\r\nnot-an-address,{user_b}\r\n", encoding="utf-8")
    refused = mailshift(*base, "--mailboxes", str(bad), "--target-maildir", template, env=env)
    assert refused.returncode == 2
    assert f"the mailbox list {bad} cannot be used" in refused.stderr
    assert "Password" in refused.stderr and "line 3, column EmailAddress" in refused.stderr
    no_parallel = mailshift(*base, "--mailboxes", str(mailboxes), "--parallel", "0", "--target-maildir", template, env=env)
    assert no_parallel.returncode == 2 and "from 1 to 50" in no_parallel.stderr

    copied = mailshift(*base, "--mailboxes", str(mailboxes), "--target-maildir", template, "--json", env=env)
    assert copied.returncode == 0, copied.stderr
    assert [e["messages_copied"] for e in json.loads(copied.stdout)["mailboxes"]] == [4, 3]
    for email, count in (("a@cli.test", 4), ("b@cli.test", 3)):
        root = tmp_path / "mail" / email / "Maildir"
        assert sum(1 for p in root.rglob("*") if p.is_file() and p.parent.name in ("cur", "new")) == count
