"""Benchmark: the agent against the guide's pipeline and the tools' own limits, side by side.

    .venv/bin/python -m bench.run [--size MB] [--repeat N] [--only dumps|pitr]

Builds a database whose plain dump is about --size MB in the embedded PostgreSQL, starts
moto's S3 server in its own process, then runs every pipeline below alternately --repeat
times and prints medians, ratios against the targets, the agent's own CPU time and its
peak memory (RSS of the agent process; pg_dump and psql excluded). Then, on the same
cluster, the point-in-time recovery rows (bench/pitr.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil
from pyrage import x25519

from backup_agent.keys.key_files import create_key_file
from bench.pitr import PitrBench
from bench.pitr_report import pitr_report
from testbed.postgres import PostgresServer, running_server
from testbed.s3 import S3Endpoint, running_s3_process
from testbed.sample_data import load_sample_data

AGENT = Path(sys.executable).parent / "backup-agent"
ROWS_PER_MB = 7_000  # orders per MB of plain dump, with ENTROPY_ROWS_PER_MB rows of tokens
ENTROPY_ROWS_PER_MB = 3_000
DATABASE = "bench"
BUCKET = "bench-backups"
SAMPLE_SECONDS = 0.02
DISASTER_RECOVERY = "agent restore onto a brand-new server (S3)"


@dataclass
class Measurement:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # the agent's own user+system seconds
    rss: list[int] = field(default_factory=list)  # the agent's peak RSS in bytes


def sampled_run(command: list[str], environment: dict[str, str]) -> tuple[float, float, int]:
    """Run `command`; return wall seconds, its own CPU seconds and peak RSS (not children)."""
    started = time.monotonic()
    process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    watched = psutil.Process(process.pid)
    cpu = 0.0
    peak = 0
    while process.poll() is None:
        try:
            times = watched.cpu_times()
            cpu = times.user + times.system
            peak = max(peak, watched.memory_info().rss)
        except psutil.Error:
            pass
        time.sleep(SAMPLE_SECONDS)
    wall = time.monotonic() - started
    stderr = process.stderr.read().decode() if process.stderr else ""
    if process.returncode != 0:
        raise SystemExit(f"benchmark step failed ({' '.join(command)}):\n{stderr}")
    return wall, cpu, peak


def shell(script: str, environment: dict[str, str]) -> float:
    started = time.monotonic()
    subprocess.run(["bash", "-o", "pipefail", "-c", script], env=environment, check=True,
                   stdout=subprocess.DEVNULL)
    return time.monotonic() - started


@contextmanager
def workspace() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="backup-agent-bench-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


class Bench:
    def __init__(self, server: PostgresServer, s3: S3Endpoint, work: Path) -> None:
        self.server = server
        self.work = work
        self.backups = work / "backups"
        self.backups.mkdir()
        self.results: dict[str, Measurement] = {}
        bindir = server.bin_directory
        self.psql = (f"{bindir}/psql -X -q -v ON_ERROR_STOP=1 -h {server.host} "
                     f"-p {server.port} -U {server.user}")
        self.pg_dump = (f"{bindir}/pg_dump -h {server.host} -p {server.port} "
                        f"-U {server.user} -d {DATABASE}")
        base = {**os.environ, "PGPASSWORD": server.password}
        self.shell_env = base
        # The normal path: the server signs its backups and trusts its own key (an unsigned
        # backup is refused without --allow-unsigned).
        signing_key = work / "signing.pem"
        self.trusted_key, _note = create_key_file(signing_key, signing=True)
        self.agent_env = {**base, **server.environment(DATABASE), **s3.environment(),
                          "BACKUP_DIR": str(self.backups), "KEEP_LOCAL": "1",
                          "SIGNING_KEY_FILE": str(signing_key)}
        self.local_env = {key: value for key, value in self.agent_env.items()
                          if not key.startswith("AWS_")}
        self.s3_env = {**self.agent_env, "S3_BUCKET": BUCKET}
        self.encrypted_env = {**self.local_env,
                              "ENCRYPT_TO": str(x25519.Identity.generate().to_public())}
        self.guide_file = work / "guide.sql.gz"

    def record(self, name: str, wall: float, cpu: float = 0.0, rss: int = 0) -> None:
        measurement = self.results.setdefault(name, Measurement())
        measurement.wall.append(wall)
        measurement.cpu.append(cpu)
        measurement.rss.append(rss)

    def agent(self, name: str, arguments: list[str], environment: dict[str, str]) -> None:
        self.record(name, *sampled_run([str(AGENT), *arguments], environment))

    def latest_backup(self) -> Path:
        return max(self.backups.glob("db_backup_*.sql.gz"))

    def fresh_database(self, name: str) -> None:
        self.server.drop_database(name)

    def one_round(self) -> None:
        run: list[tuple[str, Callable[[], None]]] = [
            ("pg_dump > /dev/null", lambda: self.record(
                "pg_dump > /dev/null", shell(f"{self.pg_dump} > /dev/null", self.shell_env))),
            ("guide: pg_dump | gzip -6 > f && sha256sum f", lambda: self.record(
                "guide: pg_dump | gzip -6 > f && sha256sum f",
                shell(f"{self.pg_dump} | gzip -6 > {self.guide_file} && "
                      f"sha256sum {self.guide_file}", self.shell_env))),
            # Before the plain backups: with KEEP_LOCAL=1 they prune this one, not it them.
            ("agent backup (local, age-encrypted)", lambda: self.agent(
                "agent backup (local, age-encrypted)", ["backup"], self.encrypted_env)),
            ("agent backup (local)", lambda: self.agent(
                "agent backup (local)", ["backup"], self.local_env)),
            ("agent backup (local + S3, streamed)", lambda: self.agent(
                "agent backup (local + S3, streamed)", ["backup"], self.s3_env)),
            ("gzip -t f && sha256sum f", lambda: self.record(
                "gzip -t f && sha256sum f",
                shell(f"gzip -t {self.latest_backup()} && sha256sum {self.latest_backup()}",
                      self.shell_env))),
            ("agent verify (local)", lambda: self.agent(
                "agent verify (local)", ["verify", str(self.latest_backup())], self.local_env)),
            ("gunzip -c f | psql", self.baseline_restore),
            ("agent restore (local)", lambda: self.agent_restore("agent restore (local)",
                                                                 str(self.latest_backup()))),
            ("agent restore (S3)", lambda: self.agent_restore("agent restore (S3)", "latest",
                                                              "--from", "s3")),
            (DISASTER_RECOVERY, self.disaster_recovery),
        ]
        for _name, step in run:
            step()

    def baseline_restore(self) -> None:
        self.fresh_database("restored_baseline")
        self.server.create_database("restored_baseline")
        self.record("gunzip -c f | psql", shell(
            f"gunzip -c {self.latest_backup()} | {self.psql} -d restored_baseline",
            self.shell_env))
        self.fresh_database("restored_baseline")

    def disaster_recovery(self) -> None:
        """The runbook's one command on a brand-new cluster with an empty BACKUP_DIR: the
        database rebuilt from S3 with its properties (the new cluster's start-up is not
        timed)."""
        empty = self.work / "new-server"
        shutil.rmtree(empty, ignore_errors=True)
        empty.mkdir(mode=0o700)
        with running_server() as fresh:
            # The key file went with the old server: the runbook's TRUSTED_SIGNING_KEYS.
            environment = {key: value for key, value in self.s3_env.items()
                           if key != "SIGNING_KEY_FILE"}
            self.agent(DISASTER_RECOVERY, ["restore", "latest", "--from", "s3", "--yes"],
                       {**environment, **fresh.environment(DATABASE),
                        "BACKUP_DIR": str(empty), "TRUSTED_SIGNING_KEYS": self.trusted_key})

    def agent_restore(self, name: str, *source: str) -> None:
        self.fresh_database("restored_agent")
        self.agent(name, ["restore", *source, "--target-db", "restored_agent", "--yes"],
                   self.s3_env)
        self.fresh_database("restored_agent")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def report(bench: Bench, size_mb: int, repeat: int, pitr: PitrBench | None) -> str:
    results = bench.results
    lines = [f"Database: plain dump {size_mb} MB requested; {repeat} alternating round(s); "
             f"{psutil.cpu_count()} cores; {datetime.now(UTC):%Y-%m-%d}", "",
             "| Pipeline | median wall (s) | agent CPU (s) | agent peak RSS (MB) |",
             "|---|---:|---:|---:|"]
    for name, measurement in results.items():
        cpu = f"{median(measurement.cpu):.2f}" if any(measurement.cpu) else ""
        rss = f"{max(measurement.rss) / 2**20:.0f}" if any(measurement.rss) else ""
        lines.append(f"| {name} | {median(measurement.wall):.2f} | {cpu} | {rss} |")
    if bench.guide_file.exists():
        lines += dump_ratios(bench)
    if pitr is not None:
        lines += pitr_report(pitr)
    peak = max(max(measurement.rss) for measurement in results.values()
               if any(measurement.rss))
    lines += ["", f"Peak agent RSS over all commands: {peak / 2**20:.0f} MB (target < 150 MB)."]
    return "\n".join(lines)


def dump_ratios(bench: Bench) -> list[str]:
    results = bench.results

    def wall(name: str) -> float:
        return median(results[name].wall)

    agent_size = bench.latest_backup().stat().st_size
    guide_size = bench.guide_file.stat().st_size
    local = wall("agent backup (local)")
    ratios = [
        ("agent backup (local) / pg_dump > /dev/null", local / wall("pg_dump > /dev/null"),
         "<= 1.5"),
        ("guide pipeline / agent backup (local)",
         wall("guide: pg_dump | gzip -6 > f && sha256sum f") / local, ">= 3.5"),
        ("agent .sql.gz size / gzip -6 size", agent_size / guide_size, "<= 1.10"),
        ("agent backup (age-encrypted) / agent backup (local)",
         wall("agent backup (local, age-encrypted)") / local, "(optional feature)"),
        ("agent backup (local + S3) / agent backup (local), wall",
         wall("agent backup (local + S3, streamed)") / local, "<= 1.2"),
        ("agent backup (local + S3) / agent backup (local), agent CPU",
         median(results["agent backup (local + S3, streamed)"].cpu)
         / max(median(results["agent backup (local)"].cpu), 1e-9), "(moto-independent)"),
        # Both restores prove the whole backup (checksum, gzip, closing line, statements)
        # before psql sees a byte, then feed the same bytes: two passes over the file.
        ("agent restore (local) / gunzip -c f | psql",
         wall("agent restore (local)") / wall("gunzip -c f | psql"), "<= 1.2"),
        ("agent restore (S3) / agent restore (local)",
         wall("agent restore (S3)") / wall("agent restore (local)"), "<= 1.3"),
        ("agent restore onto a brand-new server / gunzip -c f | psql",
         wall(DISASTER_RECOVERY) / wall("gunzip -c f | psql"), "(disaster recovery)"),
        ("agent verify / (gzip -t + sha256sum)",
         wall("agent verify (local)") / wall("gzip -t f && sha256sum f"), "<= 1.2"),
    ]
    lines = ["", "| Ratio | measured | target |", "|---|---:|---|"]
    lines += [f"| {name} | {value:.2f} | {target} |" for name, value, target in ratios]
    return [*lines, "", f"Backup {agent_size / 2**20:.1f} MiB vs gzip -6 "
            f"{guide_size / 2**20:.1f} MiB."]


def main(arguments: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark backup-agent side by side.")
    parser.add_argument("--size", type=int, default=300,
                        help="approximate plain dump size in MB (default 300)")
    parser.add_argument("--repeat", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--only", choices=("dumps", "pitr"),
                        help="only the dump rows, or only the point-in-time recovery rows")
    parser.add_argument("--load-seconds", type=int, default=60,
                        help="pgbench's run while the WAL lag is sampled (default 60)")
    options = parser.parse_args(arguments)
    with workspace() as work, running_server() as server, running_s3_process() as s3:
        print(f"building a ~{options.size} MB database...", file=sys.stderr, flush=True)
        server.create_database(DATABASE)
        load_sample_data(server, DATABASE, order_rows=max(options.size, 1) * ROWS_PER_MB)
        # The sample schema is very repetitive (it compresses ~6.5:1); real tables carry
        # hashes, tokens and free text. A third of high-entropy text brings it near 4:1.
        server.psql(DATABASE, "CREATE TABLE audit.tokens AS SELECT g AS id, "
                              "md5(random()::text) || ' ' || md5(random()::text) || ' ' || "
                              "md5(random()::text) AS token FROM generate_series(1, "
                              f"{max(options.size, 1) * ENTROPY_ROWS_PER_MB}) AS g;")
        s3.create_bucket(BUCKET)
        bench = Bench(server, s3, work)
        for round_number in range(options.repeat if options.only != "pitr" else 0):
            print(f"round {round_number + 1} of {options.repeat}...", file=sys.stderr,
                  flush=True)
            bench.one_round()
        pitr = None
        if options.only != "dumps":
            # 64 segments (1 GiB of WAL) at the default size, proportionally fewer below.
            segments = max(2, options.size * 64 // 300)
            print(f"point-in-time recovery ({segments} segments of WAL)...", file=sys.stderr,
                  flush=True)
            pitr = PitrBench(bench, s3, segments=segments, load_seconds=options.load_seconds,
                             repeat=options.repeat)
            pitr.run()
        print(report(bench, options.size, options.repeat, pitr))
    return 0


if __name__ == "__main__":
    sys.exit(main())
