"""The point-in-time recovery rows of the benchmark (issues 22 and 23), on the bench's cluster.

After the dump rows (or alone, `--only pitr`), on the same server: archiving to a local
directory (`archive_command = cp`, the baselines' WAL) is switched on, then

1. base backups: `backup-agent base-backup` (gzip, signed, S3; and age-encrypted) against
   `pg_basebackup -Ft -z` to a local directory, alternately --repeat times;
2. a WAL backlog: WAL written (an insert loop) while nothing streams, copied into the
   spool, drained by `backup-agent wal stream` (gzip + age + signature, create-only) against
   the same files put one by one with boto3 (raw, and gzip -6'd);
3. lag under load: the same stream while pgbench writes, `status --json` every second;
4. replay: `restore-cluster --to-time latest` from S3 against the newest pg_basebackup
   recovered by a plain PostgreSQL with `restore_command = 'cp …'` from the local archive.
"""

from __future__ import annotations

import gzip
import json
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
from pyrage import x25519

from backup_agent.wal.names import parse_wal_name
from backup_agent.wal.spool import read_state
from testbed.pitr import owned_directory
from testbed.postgres import free_port

if TYPE_CHECKING:
    from bench.run import Bench
    from testbed.s3 import S3Endpoint

SEGMENT_BYTES = 16 * 2**20
BARMAN_CLOUD_QUOTED = 2.0  # segments/s, barman-cloud's plugin as issue 22 quotes it
WAIT_SECONDS = 1800
FILLER_ROWS = 200_000  # rows per INSERT of the backlog's loop (~25 MiB of WAL)
AGENT_BASE = "agent base-backup (gzip, signed, S3)"
AGENT_BASE_AGE = "agent base-backup (gzip, age, signed, S3)"
PG_BASEBACKUP = "pg_basebackup -Ft -z -D dir (local)"
AGENT_REPLAY = "agent restore-cluster --to-time latest (S3, prefetch)"
BASELINE_UPLOADS = (("boto3 put_object, one by one (raw)", False),
                    ("gzip -6 + boto3 put_object, one by one", True))
CP_REPLAY = "tar xzf + postgres, restore_command = 'cp archive/%f %p'"


@dataclass
class PitrFacts:
    segments: int = 0
    backlog_bytes: int = 0
    drain: dict[str, float] = field(default_factory=dict)  # pipeline: seconds
    drain_cpu: float = 0.0
    lags: list[float] = field(default_factory=list)
    failed_samples: int = 0
    load_wal_bytes: int = 0
    load_seconds: int = 0
    tps: float = 0.0


class PitrBench:
    def __init__(self, bench: Bench, s3: S3Endpoint, *, segments: int, load_seconds: int,
                 repeat: int) -> None:
        self.bench, self.s3, self.server = bench, s3, bench.server
        self.target_segments, self.repeat = segments, repeat
        self.facts = PitrFacts(load_seconds=load_seconds)
        work = bench.work
        identity = x25519.Identity.generate()
        identity_file = work / "pitr-identity.txt"
        identity_file.write_text(f"{identity}\n")
        identity_file.chmod(0o600)
        self.spool = work / "spool"
        self.spool.mkdir(mode=0o700)
        self.env = {**bench.s3_env, "ENCRYPT_TO": str(identity.to_public()),
                    "AGE_IDENTITY_FILE": str(identity_file), "WAL_SPOOL_DIR": str(self.spool),
                    "WAL_SPOOL_MAX": "64GiB"}
        self.plain_env = {key: value for key, value in self.env.items() if key != "ENCRYPT_TO"}
        self.pg_basebackups: list[Path] = []
        bindir = self.server.bin_directory
        self.connection = ["-h", self.server.host, "-p", str(self.server.port), "-U",
                           self.server.user]
        self.pgbench = [str(bindir / "pgbench"), *self.connection]
        self.cluster_bytes = 0
        self.max_delay_seconds = 60.0  # WAL_MAX_DELAY's default: the stream runs with it

        from bench.run import AGENT  # here: bench.run imports this module

        self.bench_agent = AGENT

    def sql(self, text: str) -> str:
        return self.server.psql("postgres", text).strip()

    def run(self) -> None:
        self.prepare()
        for _round in range(self.repeat):
            self.base_backups()
        self.backlog()
        stream = self.drain()
        try:
            self.lag_under_load()
            self.archive_to_the_end()
        finally:
            stream.send_signal(signal.SIGTERM)
            stream.wait(60)
            self.stream_log.close()
        self.replay_with_cp()
        self.replay_from_s3()

    def prepare(self) -> None:
        self.archive = owned_directory(self.server, "archive", self.bench.work)
        self.sql(f"ALTER SYSTEM SET archive_mode = on; "
                 f"ALTER SYSTEM SET archive_command = 'cp %p {self.archive}/%f';")
        self.server.restart()
        self.server.create_database("pgbench")
        scale = max(1, self.target_segments // 6)
        subprocess.run([*self.pgbench, "-i", "-q", "-s", str(scale), "pgbench"],
                       env=self.bench.shell_env, check=True, capture_output=True)
        self.sql("CREATE TABLE pitr_filler (id bigint, a text, b text);")
        if not any(self.bench.backups.glob("db_backup_*.sql.gz")):  # status needs a backup
            self.bench.agent("agent backup (local)", ["backup"], self.bench.local_env)

    def base_backups(self) -> None:
        self.cluster_bytes = int(self.sql("SELECT sum(pg_database_size(oid)) FROM pg_database;"))
        self.bench.agent(AGENT_BASE, ["base-backup"], self.plain_env)
        into = owned_directory(self.server, f"pg_basebackup-{len(self.pg_basebackups)}",
                               self.bench.work)
        started = time.monotonic()
        subprocess.run([str(self.server.bin_directory / "pg_basebackup"), *self.connection,
                        "-D", str(into), "-Ft", "-z", "-c", "fast"],
                       env=self.bench.shell_env, user=self.server.system_user, cwd="/",
                       check=True, capture_output=True)
        self.bench.record(PG_BASEBACKUP, time.monotonic() - started)
        self.pg_basebackups.append(into)
        # Last: restore-cluster starts from the newest base backup, this one (encrypted).
        self.bench.agent(AGENT_BASE_AGE, ["base-backup"], self.env)

    def backlog(self) -> None:
        """WAL written while nothing streams, archived locally, then copied into the spool
        as a stream stopped by an S3 outage would have left it; the slot starts after it."""
        start = self.sql("SELECT pg_current_wal_lsn();")
        target = self.target_segments * SEGMENT_BYTES
        while int(float(self.sql(f"SELECT pg_current_wal_lsn() - '{start}'::pg_lsn;"))) < target:
            self.sql(f"INSERT INTO pitr_filler SELECT g, md5(random()::text), "
                     f"md5(random()::text) FROM generate_series(1, {FILLER_ROWS}) AS g;")
        self.switch_and_wait(lambda name: (self.archive / name).exists())
        setup = subprocess.run([str(self.bench_agent), "wal", "setup", "--yes"], env=self.env,
                               capture_output=True, text=True, check=False)
        if setup.returncode != 0:
            raise SystemExit(f"wal setup failed:\n{setup.stdout}{setup.stderr}")
        self.backlog_files = sorted(path for path in self.archive.iterdir()
                                    if parse_wal_name(path.name) is not None)
        for path in self.backlog_files:
            shutil.copyfile(path, self.spool / path.name)
        self.facts.segments = len(self.backlog_files)
        self.facts.backlog_bytes = sum(path.stat().st_size for path in self.backlog_files)

    def switch_and_wait(self, arrived: Any) -> str:
        name = self.sql("SELECT pg_walfile_name(pg_switch_wal());")
        deadline = time.monotonic() + WAIT_SECONDS
        while not arrived(name):
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} was not archived within {WAIT_SECONDS} s")
            time.sleep(0.05)
        return name

    def drain(self) -> subprocess.Popen[bytes]:
        """The baselines first (they read the archive), then the agent drains the spool;
        its stream keeps running for the lag under load."""
        client = self.s3.client()
        for index, (name, compress) in enumerate(BASELINE_UPLOADS):
            started = time.monotonic()
            for path in self.backlog_files:
                body = path.read_bytes()
                client.put_object(Bucket=self.env["S3_BUCKET"], Key=f"baseline/{index}/{path.name}",
                                  Body=gzip.compress(body, 6) if compress else body)
            self.facts.drain[name] = time.monotonic() - started
        started = time.monotonic()
        self.stream_log = (self.bench.work / "stream.log").open("wb")
        stream = subprocess.Popen([str(self.bench_agent), "wal", "stream"], env=self.env,
                                  stdout=subprocess.DEVNULL, stderr=self.stream_log)
        watched = psutil.Process(stream.pid)
        while any((self.spool / path.name).exists() for path in self.backlog_files):
            if stream.poll() is not None or time.monotonic() - started > WAIT_SECONDS:
                raise SystemExit(f"wal stream did not drain the spool (exit {stream.poll()})")
            times = watched.cpu_times()
            self.facts.drain_cpu = times.user + times.system
            time.sleep(0.05)
        self.facts.drain["agent wal stream"] = time.monotonic() - started
        return stream

    def lag_under_load(self) -> None:
        before = self.sql("SELECT pg_current_wal_lsn();")
        load = subprocess.Popen([*self.pgbench, "-n", "-c", "2", "-j", "2", "-T",
                                 str(self.facts.load_seconds), "pgbench"],
                                env=self.bench.shell_env, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        while load.poll() is None:
            tick = time.monotonic()
            sampled = subprocess.run([str(self.bench_agent), "status", "--json", "--where",
                                      "local", "--max-age", "3650d"], env=self.env,
                                     capture_output=True, text=True, check=False)
            lag = _lag(sampled.stdout)
            if lag is None:
                self.facts.failed_samples += 1
            else:
                self.facts.lags.append(lag)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
        output = load.stdout.read() if load.stdout else ""
        self.facts.tps = next((float(line.split("=")[1].split("(")[0])
                               for line in output.splitlines() if line.startswith("tps")), 0.0)
        self.facts.load_wal_bytes = int(float(self.sql(
            f"SELECT pg_current_wal_lsn() - '{before}'::pg_lsn;")))

    def archive_to_the_end(self) -> None:
        """Close the last segment; wait until both archives (local, S3) hold it."""

        def in_both(name: str) -> bool:
            state = read_state(self.spool) or {}
            return (self.archive / name).exists() and str(state.get("last_segment")) >= name

        self.switch_and_wait(in_both)

    def replay_with_cp(self) -> None:
        """The newest pg_basebackup, recovered by PostgreSQL itself from the local archive:
        extracted, started with recovery.signal, until recovery ends; stopped cleanly."""
        source = self.pg_basebackups[-1]
        pgdata = owned_directory(self.server, "restored-cp", self.bench.work)
        sockets = owned_directory(self.server, "restored-cp-socket", self.bench.work)
        user, bindir = self.server.system_user, self.server.bin_directory
        options = (f"-c port={free_port()} -c listen_addresses='' -k {sockets} "
                   f"-c archive_mode=off -c restore_command='cp {self.archive}/%f %p'")
        started = time.monotonic()
        for command in (["tar", "-xzf", f"{source}/base.tar.gz", "-C", str(pgdata)],
                        ["tar", "-xzf", f"{source}/pg_wal.tar.gz", "-C", f"{pgdata}/pg_wal"],
                        ["touch", f"{pgdata}/recovery.signal"],
                        [str(bindir / "pg_ctl"), "-D", str(pgdata), "-w", "-t", "3600", "-l",
                         f"{sockets}/log", "-o", options, "start"]):
            subprocess.run(command, user=user, cwd="/", check=True, capture_output=True)
        deadline = time.monotonic() + WAIT_SECONDS
        while (pgdata / "recovery.signal").exists():  # removed when recovery ends
            if time.monotonic() > deadline:
                raise SystemExit(f"recovery with cp did not end: see {sockets}/log")
            time.sleep(0.05)
        subprocess.run([str(bindir / "pg_ctl"), "-D", str(pgdata), "-w", "-t", "600", "-m",
                        "fast", "stop"], user=user, cwd="/", check=True, capture_output=True)
        self.bench.record(CP_REPLAY, time.monotonic() - started)
        shutil.rmtree(pgdata)

    def replay_from_s3(self) -> None:
        pgdata = owned_directory(self.server, "restored-agent", self.bench.work)
        # Another machine: S3, the public signing key (SIGNING_KEY_FILE's, trusted), the
        # age identity; no server, no spool.
        environment = {key: value for key, value in self.env.items()
                       if not key.startswith(("POSTGRES_", "WAL_"))}
        self.bench.agent(AGENT_REPLAY, ["restore-cluster", "--to-time", "latest", "--pgdata",
                                        str(pgdata)], environment)
        shutil.rmtree(pgdata)


def _lag(stdout: str) -> float | None:
    try:
        wal: dict[str, Any] | None = json.loads(stdout).get("wal")
    except ValueError:
        return None
    lag = wal.get("lag_seconds") if wal else None
    return float(lag) if isinstance(lag, int | float) else None
