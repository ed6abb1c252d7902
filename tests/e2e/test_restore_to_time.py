"""`restore --to-time T`: one database as of T into the running server, from S3 alone.

One primary under an insert loop, its WAL streamed by `wal stream` and a base backup by
`base-backup`, both signed, in moto. Each restore is compared with the commit timestamps
the primary itself recorded (track_commit_timestamp): every row committed at or before T
is there, none after.
"""

from __future__ import annotations

import json
import secrets
import signal
import socket
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from backup_agent.model.errors import RestoreError
from backup_agent.physical.server import PrivateServer
from testbed.pitr import owned_directory
from testbed.s3 import S3Endpoint
from tests.conftest import run_agent
from tests.streamed_archive import DATABASE, Archived, served_archive


@pytest.fixture(scope="module")
def archived(s3_endpoint: S3Endpoint,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archived]:
    with served_archive(s3_endpoint, tmp_path_factory, "test-restore-to-time") as archive:
        yield archive


def _to_time(archived: Archived, moment: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_agent(["restore", "--to-time", moment, "--scratch", str(archived.scratch),
                      "--yes", "--json", *extra], archived.environment)


def test_one_database_as_of_random_moments_swapped_in_exactly(archived: Archived) -> None:
    moments = sorted(archived.commits.values())
    for moment in secrets.SystemRandom().sample(moments[len(moments) // 10:-2], 5):
        target = moment + timedelta(microseconds=secrets.choice([0, 1, 300]))
        result = _to_time(archived, target.isoformat())
        assert result.returncode == 0, result.stdout + result.stderr
        data = json.loads(result.stdout)
        assert archived.orders(DATABASE) == archived.committed_by(target), target
        assert data["last_commit"] is not None
        assert datetime.fromisoformat(data["last_commit"]) <= target
        # the previous database is kept, whole, for rollback
        assert archived.orders(data["previous_database"]) == set(archived.commits)
        archived.server.psql("postgres", f"DROP DATABASE {DATABASE} WITH (FORCE); "
                                         f"ALTER DATABASE {data['previous_database']} "
                                         f"RENAME TO {DATABASE};")


def test_beside_the_database_with_target_db_nothing_is_replaced(archived: Archived) -> None:
    target = sorted(archived.commits.values())[len(archived.commits) // 2]
    result = _to_time(archived, target.isoformat().replace("+00:00", "Z"), "--target-db",
                      "shop_at_t")
    assert result.returncode == 0, result.stdout + result.stderr
    assert archived.orders("shop_at_t") == archived.committed_by(target)
    assert archived.orders(DATABASE) == set(archived.commits)
    archived.server.psql("postgres", "DROP DATABASE shop_at_t;")


def test_a_dry_run_recovers_and_proves_but_changes_nothing(archived: Archived) -> None:
    target = sorted(archived.commits.values())[len(archived.commits) // 3]
    before = archived.server.psql("postgres", "SELECT datname FROM pg_database ORDER BY 1;")
    result = run_agent(["restore", "--to-time", target.isoformat(), "--scratch",
                        str(archived.scratch), "--dry-run"], archived.environment)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "recovered as of" in result.stderr and "dry run" in result.stderr
    assert archived.server.psql("postgres", "SELECT datname FROM pg_database ORDER BY 1;") \
        == before
    assert not list(archived.scratch.iterdir())  # the throwaway cluster is gone


def test_latest_closes_the_current_segment_and_brings_back_everything(
        archived: Archived) -> None:
    archived.server.psql(DATABASE, "INSERT INTO orders (at) VALUES (clock_timestamp());")
    every = archived.orders(DATABASE)
    result = _to_time(archived, "latest", "--target-db", "shop_latest")
    assert result.returncode == 0, result.stdout + result.stderr
    assert archived.orders("shop_latest") == every
    archived.server.psql("postgres", "DROP DATABASE shop_latest;")
    archived.server.psql(DATABASE, f"DELETE FROM orders WHERE id > {max(archived.commits)};")


def test_latest_stops_before_any_change_when_the_newest_wal_does_not_reach_s3(
        archived: Archived, monkeypatch: pytest.MonkeyPatch) -> None:
    from backup_agent.model.settings import resolve_settings
    from backup_agent.model.targets import parse_target
    from backup_agent.restoring import archive_now
    from backup_agent.restoring.as_of import database_as_of

    for variable, value in archived.environment.items():
        monkeypatch.setenv(variable, value)  # the S3 client reads the endpoint and keys
    monkeypatch.setattr(archive_now, "ARCHIVE_WAIT_MINIMUM_SECONDS", 2.0)
    settings = resolve_settings({}, archived.environment)
    archived.stream.send_signal(signal.SIGSTOP)  # alive, holding its slot, uploading nothing
    try:
        archived.server.psql(DATABASE, "INSERT INTO orders (at) VALUES (clock_timestamp());")
        with pytest.raises(RestoreError, match=r"did not reach s3://.*nothing was restored"), \
                database_as_of(settings, parse_target("latest"), scratch=archived.scratch):
            raise AssertionError("a backup was made from an archive short of now")
    finally:
        archived.stream.send_signal(signal.SIGCONT)
    assert not list(archived.scratch.iterdir())
    archived.server.psql(DATABASE, f"DELETE FROM orders WHERE id > {max(archived.commits)};")


@pytest.mark.parametrize("command", ["restore", "restore-cluster"])
def test_what_can_be_refused_is_before_the_server_is_asked_anything(
        archived: Archived, command: str, tmp_path: Path) -> None:
    # A server that does not answer: asked first, it would be the error.
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        silent = {**archived.environment, "POSTGRES_HOST": "127.0.0.1",
                  "POSTGRES_PORT": str(unused.getsockname()[1])}
    where = ["--scratch", str(archived.scratch), "--yes"] if command == "restore" else [
        "--pgdata", str(owned_directory(archived.server, f"refused-{secrets.token_hex(4)}"))]
    keyless = {name: value for name, value in silent.items()
               if name not in ("TRUSTED_SIGNING_KEYS", "SIGNING_KEY_FILE")}
    result = run_agent([command, "--to-time", "latest", *where], keyless)
    assert result.returncode == 8, result.stderr  # as a dump restore without a key
    assert "no trusted signing key here" in result.stderr
    assert "Traceback" not in result.stderr
    if command == "restore-cluster":  # a data directory no server could run in
        (tmp_path / "root-owned").mkdir(mode=0o700)
        result = run_agent([command, "--to-time", "latest", "--pgdata",
                            str(tmp_path / "root-owned")], silent)
        assert result.returncode == 2 and "belongs to root" in result.stderr, result.stderr


@pytest.mark.parametrize("when", ["future", "before the window", "no offset"])
def test_a_time_it_cannot_restore_is_refused_up_front(archived: Archived, when: str) -> None:
    moment = {"future": (datetime.now().astimezone() + timedelta(hours=1)).isoformat(),
              "before the window": (archived.window_start - timedelta(hours=1)).isoformat(),
              "no offset": "2026-12-02T14:03:00"}[when]
    result = _to_time(archived, moment)
    assert result.returncode == (9 if when == "before the window" else 2), result.stdout
    error = json.loads(result.stdout)["error"]
    assert {"future": "in the future", "before the window": "base backup",
            "no offset": "no UTC offset"}[when] in error
    assert archived.orders(DATABASE) == set(archived.commits)
    assert not list(archived.scratch.iterdir())


def test_restore_cluster_to_latest_closes_the_live_servers_segment_too(
        archived: Archived) -> None:
    archived.server.psql(DATABASE, "INSERT INTO orders (at) VALUES (clock_timestamp());")
    every = archived.orders(DATABASE)
    pgdata = owned_directory(archived.server, "latest-cluster")
    result = run_agent(["restore-cluster", "--to-time", "latest", "--pgdata", str(pgdata)],
                       archived.environment)
    assert result.returncode == 0, result.stdout + result.stderr
    owner = (pgdata.stat().st_uid, pgdata.stat().st_gid)
    with PrivateServer(archived.server.bin_directory, pgdata, {}, owner=owner) as server:
        role = server.wait_until_ready()
        with psycopg.connect(host=str(server.socket_directory), port=server.port, user=role,
                             dbname=DATABASE) as connection:
            restored = {row[0] for row in connection.execute("SELECT id FROM orders")}
        server.stop()
    assert restored == every
    archived.server.psql(DATABASE, f"DELETE FROM orders WHERE id > {max(archived.commits)};")


def test_a_base_backup_whose_wal_is_not_archived_is_passed_over_for_an_older_one(
        archived: Archived) -> None:
    """A base backup taken while the stream was down has no WAL in S3 yet: the newest
    one then cannot be recovered at all, and every moment after the older base backup,
    which the archive does cover, must still be restorable from it."""
    archived.stream.send_signal(signal.SIGSTOP)  # alive, holding its slot, uploading nothing
    try:
        based = run_agent(["base-backup", "--json"], archived.environment)
        assert based.returncode == 0, based.stderr
        newest = json.loads(based.stdout)
        with socket.socket() as unused:  # the server lost: restore the archive as it is
            unused.bind(("127.0.0.1", 0))
            lost = {**archived.environment, "POSTGRES_HOST": "127.0.0.1",
                    "POSTGRES_PORT": str(unused.getsockname()[1])}
        pgdata = owned_directory(archived.server, f"older-base-{secrets.token_hex(4)}")
        result = run_agent(["restore-cluster", "--to-time", "latest", "--pgdata",
                            str(pgdata), "--json"], lost)
    finally:
        archived.stream.send_signal(signal.SIGCONT)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert "was passed over" in " ".join(report["warnings"]), report
    assert newest["end_time"] not in report["base_backup"]
    # Replayed past the older base backup, as far as the archive reached when it stopped.
    assert datetime.fromisoformat(report["last_commit"]) > archived.window_start


def test_another_server_s_key_is_named_not_a_missing_base_backup(archived: Archived,
                                                                  tmp_path: Path) -> None:
    from backup_agent.keys.key_files import create_key_file

    public, _note = create_key_file(tmp_path / "other.pem", signing=True)
    other = {**{name: value for name, value in archived.environment.items()
                if name != "SIGNING_KEY_FILE"}, "TRUSTED_SIGNING_KEYS": public}
    archived.stream.send_signal(signal.SIGSTOP)  # asked to close its segment, it would wait
    try:
        result = run_agent(["restore", "--to-time", "latest", "--scratch",
                            str(archived.scratch), "--dry-run"], other)
    finally:
        archived.stream.send_signal(signal.SIGCONT)
    assert result.returncode == 8, result.stderr  # not 10 after a minute's wait for WAL
    assert "none is signed by a trusted key: check TRUSTED_SIGNING_KEYS" in result.stderr
    assert not list(archived.scratch.iterdir())


def test_a_target_db_that_exists_is_refused_before_the_recovery(archived: Archived) -> None:
    result = _to_time(archived, "latest", "--target-db", DATABASE)
    assert result.returncode == 2, result.stdout
    error = json.loads(result.stdout)["error"]
    assert f"database {DATABASE} already exists" in error and "leave out --target-db" in error
    assert "recover" not in result.stderr  # refused before the throwaway cluster was made
    assert not list(archived.scratch.iterdir())


def test_the_question_names_the_moment_and_its_last_commit(
        archived: Archived, monkeypatch: pytest.MonkeyPatch) -> None:
    from backup_agent.actions.restore import run_restore
    from backup_agent.model.errors import CancelledError
    from backup_agent.model.settings import resolve_settings

    for variable, value in archived.environment.items():
        monkeypatch.setenv(variable, value)
    asked: list[str] = []

    def answer_no(plan: object) -> bool:
        asked.append(plan.source.location)  # type: ignore[attr-defined]
        return False

    target = sorted(archived.commits.values())[len(archived.commits) // 2]
    with pytest.raises(CancelledError):
        run_restore(resolve_settings({}, archived.environment), "latest",
                    to_time=target.isoformat(), scratch=archived.scratch, confirm=answer_no)
    assert asked == [f"{DATABASE} as of {target.isoformat()} (last commit "
                     f"{target.isoformat()})"]
    assert archived.orders(DATABASE) == set(archived.commits)


def test_a_user_who_cannot_restore_the_owners_is_refused_before_the_recovery(
        archived: Archived) -> None:
    archived.server.psql("postgres", "CREATE ROLE not_super LOGIN PASSWORD 'not-super-pw';")
    try:
        denied = {**archived.environment, "POSTGRES_USER": "not_super",
                  "POSTGRES_PASSWORD": "not-super-pw"}
        result = run_agent(["restore", "--to-time", "latest", "--scratch",
                            str(archived.scratch), "--target-db", "shop_not_super", "--yes"],
                           denied)
        assert result.returncode == 2, result.stderr
        assert "needs a superuser" in result.stderr and "--no-owner" in result.stderr
        assert "closed WAL segment" not in result.stderr  # the server was not asked yet
        assert not list(archived.scratch.iterdir())
    finally:
        archived.server.psql("postgres", "DROP DATABASE IF EXISTS shop_not_super; "
                                         "DROP ROLE not_super;")
