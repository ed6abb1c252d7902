"""Issue 21's attacks on restore, as helpers the PostgreSQL 18 and 16 attack tests share.

Each attack is planted in an otherwise genuine backup (a real `backup-agent backup` of the
sample database), rewritten consistently: data, .sha256, manifest and globals file, in a
backup directory and a bucket that hold nothing else (so `latest` finds it). After every
attack, `outside` must be what it was: no marker file, the same roles with the same
attributes, memberships and settings, the same `postgresql.auto.conf`, the same databases
and their content.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from testbed.postgres import PostgresServer
from testbed.s3 import S3Endpoint
from testbed.sample_data import fingerprint, load_sample_data
from tests.conftest import DOCKER_CONTAINER, clean_environment, make_backup, run_agent
from tests.fabricate import rewrite_backup

EVIL_ROLE = "atk_evil"
PUBLIC_COMMENT = b"COMMENT ON SCHEMA public IS "


@functools.cache
def unsigned_flag() -> tuple[str, ...]:
    """`--allow-unsigned` once the agent has it (issue 21: unsigned backups are refused by
    default), so that a forged backup meets the engine's walls, not only the signature
    check. Today's agent has no such flag and restores unsigned backups anyway."""
    from tests.conftest import clean_environment

    result = run_agent(["restore", "--help"], {**clean_environment(), "COLUMNS": "200"})
    return ("--allow-unsigned",) if "--allow-unsigned" in result.stdout else ()


def harmful_sql(marker: Path, bystander: str, superuser: str) -> bytes:
    """Statements that reach outside the database being built, without a single quote (so
    they can sit inside a literal for one reader and outside it for another)."""
    return (f"COPY (SELECT 1) TO PROGRAM $q$touch {marker}; cat > /dev/null$q$; "
            f"ALTER SYSTEM SET work_mem = $q$77MB$q$; "
            f"DROP DATABASE {bystander} WITH (FORCE); "
            f"CREATE ROLE {EVIL_ROLE} SUPERUSER LOGIN PASSWORD $q$known-password$q$; "
            f"ALTER ROLE {superuser} SET search_path = {EVIL_ROLE}, public; ").encode()


def escalating_body(marker: Path, superuser: str, *, swallow: bool) -> str:
    """A plpgsql body doing what only a superuser may: a program on the database host, a new
    superuser role, a setting on the existing superuser. With `swallow`, each permission
    error is caught, so the data still loads."""
    actions = [f"COPY (SELECT 1) TO PROGRAM 'touch {marker}; cat > /dev/null';",
               f"CREATE ROLE {EVIL_ROLE} SUPERUSER LOGIN;",
               f"ALTER ROLE {superuser} SET search_path = {EVIL_ROLE}, public;"]
    if swallow:
        actions = [f"BEGIN {action} EXCEPTION WHEN OTHERS THEN NULL; END;"
                   for action in actions]
    return "BEGIN " + " ".join(actions) + " END"


def before_first_schema(attack: bytes) -> Callable[[bytes], bytes]:
    """Put `attack` after the dump's SET lines, before its first CREATE SCHEMA."""
    def change(sql: bytes) -> bytes:
        at = sql.index(b"\nCREATE SCHEMA")
        return sql[:at] + b"\n" + attack + sql[at:]
    return change


# The world outside the database being built

# One session answers everything but the databases' content, each line tagged.
OUTSIDE_SQL = r"""
SELECT 'role|' || a.rolname || '|' || concat_ws('|', a.rolsuper, a.rolinherit, a.rolcreaterole,
       a.rolcreatedb, a.rolcanlogin, a.rolreplication, a.rolbypassrls, a.rolconnlimit,
       coalesce(md5(a.rolpassword), '-'), coalesce(a.rolvaliduntil::text, '-'))
FROM pg_catalog.pg_authid a
UNION ALL
SELECT 'member|' || r.rolname || '>' || m.rolname || ':' || g.admin_option::text
FROM pg_catalog.pg_auth_members g JOIN pg_catalog.pg_roles r ON r.oid = g.roleid
JOIN pg_catalog.pg_roles m ON m.oid = g.member
UNION ALL
SELECT 'setting|' || coalesce(d.datname, '*') || '|' || coalesce(r.rolname, '*') || '|'
       || s.setconfig::text
FROM pg_catalog.pg_db_role_setting s
LEFT JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase
LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
UNION ALL
SELECT 'database|' || datname || '|' || oid::text FROM pg_catalog.pg_database
UNION ALL
SELECT 'auto.conf|' || pg_catalog.translate(pg_catalog.pg_read_file('postgresql.auto.conf'),
                                            E'\n', '~');
"""


@dataclass(frozen=True)
class Outside:
    roles: dict[str, str]  # name -> attributes (and a digest of the password hash)
    memberships: list[str]
    role_settings: list[str]  # database|role|settings, * for all
    auto_conf: str
    databases: dict[str, str]  # name -> oid (a database swapped in has another)
    content: dict[str, dict[str, str]]  # database -> sample fingerprint


def outside(server: PostgresServer, watched: Iterable[str]) -> Outside:
    """Everything a restore must not change, `watched` databases' content included."""
    found: dict[str, list[str]] = {}
    for line in server.psql("postgres", OUTSIDE_SQL).splitlines():
        tag, _, rest = line.partition("|")
        if rest:
            found.setdefault(tag, []).append(rest)
    databases = dict(line.split("|", 1) for line in found.get("database", []))
    return Outside(
        roles=dict(line.split("|", 1) for line in found.get("role", [])),
        memberships=sorted(found.get("member", [])),
        role_settings=sorted(found.get("setting", [])),
        auto_conf="".join(found.get("auto.conf", [])),
        databases=databases,
        content={name: fingerprint(server, name) for name in watched if name in databases})


POWERLESS = "f|t|f|f|f|f|f|-1|-|-"  # NOLOGIN, no password, no CREATEROLE/CREATEDB/BYPASSRLS


def assert_nothing_outside_changed(
        server: PostgresServer, before: Outside, result: subprocess.CompletedProcess[str],
        markers: Path, *, codes: set[int], may_create_databases: Iterable[str] = (),
        may_create_powerless_roles: Iterable[str] = ()) -> None:
    """The agent's exit code is one of `codes`, it printed no Traceback, no marker exists,
    and nothing outside the database being built changed."""
    detail = f"exit {result.returncode}\nstdout: {result.stdout[-3000:]}\n" \
             f"stderr: {result.stderr[-3000:]}"
    found = sorted(path.name for path in markers.iterdir())
    assert not found, f"the attack ran: {found} written by a program it started\n{detail}"
    after = outside(server, before.content)
    new_roles = {name: after.roles[name] for name in set(after.roles) - set(before.roles)}
    allowed = set(may_create_powerless_roles)
    assert all(name in allowed and attributes == POWERLESS
               for name, attributes in new_roles.items()), \
        f"roles created: {new_roles}\n{detail}"
    assert {name: after.roles.get(name) for name in before.roles} == before.roles, \
        f"existing roles altered or dropped\n{detail}"
    assert after.memberships == before.memberships, detail
    # A powerless role the restore created may carry its recorded settings (issue 21: "per-role
    # settings only for roles this restore created"); no existing role's may change.
    kept = [line for line in after.role_settings if line.split("|")[1] not in new_roles]
    assert kept == before.role_settings, f"role settings changed: {kept}\n{detail}"
    assert after.auto_conf == before.auto_conf, \
        f"postgresql.auto.conf changed: {after.auto_conf!r}\n{detail}"
    created = set(after.databases) - set(before.databases)
    permitted = set(may_create_databases)
    assert not {name for name in created if name not in permitted and
                not (result.returncode == 0 and "_pre_restore_" in name)}, \
        f"databases left behind: {created}\n{detail}"
    assert not {name for name in created if "_verify_" in name or
                ("_restore_" in name and "_pre_restore_" not in name)}, detail
    gone = set(before.databases) - set(after.databases)
    assert not gone, f"databases gone: {gone}\n{detail}"
    assert after.content == before.content, f"a database's content changed\n{detail}"
    assert "Traceback" not in result.stderr, detail
    assert result.returncode in codes, detail


# Planting

@dataclass
class Planted:
    name: str
    directory: Path  # BACKUP_DIR holding only the planted backup
    bucket: str  # a bucket holding only the planted backup
    uri: str


@dataclass
class Bed:
    """One genuine backup of `production` (local and S3), and the world around it."""

    server: PostgresServer
    s3: S3Endpoint
    production: str
    bystander: str
    seed: str
    genuine_directory: Path
    genuine: str
    genuine_key: str
    environment: dict[str, str]
    databases: set[str] = field(default_factory=set)
    roles: set[str] = field(default_factory=set)
    buckets: int = 0

    def plant(self, where: Path, change: Callable[[bytes], bytes], *,
              change_globals: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
              without_globals: bool = False) -> Planted:
        """A consistent rewrite of the genuine backup, alone in a directory and a bucket,
        dated five minutes before it (never in the future, which `latest` passes over)."""
        directory = where / "backups"
        directory.mkdir(mode=0o700)
        for path in self.genuine_directory.glob(f"{self.genuine}*"):
            shutil.copy(path, directory / path.name)
        name = rewrite_backup(directory, self.genuine, change, later_by=-timedelta(minutes=5),
                              change_globals=change_globals)
        for path in directory.glob(f"{self.genuine}*"):
            path.unlink()
        if without_globals:  # as made before backups carried their roles
            (directory / f"{name}.globals").unlink(missing_ok=True)
            manifest_path = directory / f"{name}.manifest.json"
            manifest = json.loads(manifest_path.read_text())
            manifest.pop("globals", None)
            manifest_path.write_text(json.dumps(manifest))
        self.buckets += 1
        bucket = f"{self.production.replace('_', '-')}-planted-{self.buckets}"
        self.s3.create_bucket(bucket)
        client = self.s3.client()
        prefix = self.genuine_key[:-len(self.genuine)]
        for path in directory.glob(f"{name}*"):
            client.put_object(Bucket=bucket, Key=prefix + path.name, Body=path.read_bytes())
        return Planted(name=name, directory=directory, bucket=bucket,
                       uri=f"s3://{bucket}/{prefix}{name}")

    def env_for(self, planted: Planted, **extra: str) -> dict[str, str]:
        return {**self.environment, "BACKUP_DIR": str(planted.directory),
                "S3_BUCKET": planted.bucket, **extra}


ENTRY_POINTS = ("path", "no-owner", "target-db", "latest-s3", "s3-url", "restore-test",
                "restore-test-s3", "docker")


def invocation(entry: str, bed: Bed, planted: Planted, docker_shim: dict[str, str] | None
               ) -> tuple[list[str], dict[str, str]]:
    """The agent's arguments and environment for `entry` on the planted backup."""
    environment = bed.env_for(planted)
    path = str(planted.directory / planted.name)
    flag = list(unsigned_flag())
    arguments = {
        "path": ["restore", path, "--yes"],
        "no-owner": ["restore", path, "--no-owner", "--yes"],
        "no-owner-s3": ["restore", planted.uri, "--no-owner", "--yes"],
        "target-db": ["restore", path, "--target-db", f"{bed.production}_copy", "--yes"],
        "latest-s3": ["restore", "latest", "--from", "s3", "--yes"],
        "s3-url": ["restore", planted.uri, "--yes"],
        "restore-test": ["verify", path, "--restore-test"],
        "restore-test-s3": ["verify", "latest", "--from", "s3", "--restore-test"],
        "docker": ["restore", "latest", "--from", "s3", "--yes"],
        "docker-no-owner": ["restore", "latest", "--from", "s3", "--no-owner", "--yes"],
    }[entry]
    if entry.startswith("docker"):
        assert docker_shim is not None
        environment.update(docker_shim, POSTGRES_CONTAINER=DOCKER_CONTAINER)
        del environment["PG_BINDIR"]
    return [*arguments, *flag], environment


# Cleaning up after an attack that worked (today's code), so the next test starts clean

def clean_up(server: PostgresServer, baseline: Outside, known_databases: Iterable[str],
             seeded: dict[str, str]) -> None:
    """Undo what an attack that worked left behind (databases, roles, role settings, ALTER
    SYSTEM) and recreate each `seeded` database (name -> template) that is gone or was
    swapped for another."""
    now = outside(server, ())
    keep = set(known_databases) | set(seeded)
    for name in set(now.databases) - keep:
        server.drop_database(name)
    for name, template in seeded.items():
        if name not in now.databases or now.databases[name] != baseline.databases.get(name):
            server.drop_database(name)
            server.create_database(name, template=template)
    for line in set(now.role_settings) - set(baseline.role_settings):
        database, role, _ = line.split("|", 2)
        where = "" if database == "*" else f' IN DATABASE "{database}"'
        server.psql("postgres", f'ALTER ROLE "{role}"{where} RESET ALL;', check=False)
    for role in set(now.roles) - set(baseline.roles):
        for database in server.database_names() - {"template0"}:
            server.psql(database, f'DROP OWNED BY "{role}";', check=False)
        server.psql("postgres", f'DROP ROLE "{role}";', check=False)
    if now.auto_conf != baseline.auto_conf:
        server.psql("postgres", "ALTER SYSTEM RESET ALL;", check=False)


# The beds the attack modules share

_markers = itertools.count(1)


@contextlib.contextmanager
def markers_directory(prefix: str) -> Iterator[Path]:
    """World-writable: a program the server starts runs as its own system user."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o777)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def new_markers(root: Path) -> Path:
    """A fresh world-writable directory under `root` for one test's markers."""
    directory = root / f"t{next(_markers)}"
    directory.mkdir()
    directory.chmod(0o777)
    return directory


@contextlib.contextmanager
def laid_out(server: PostgresServer, s3: S3Endpoint, directory: Path, *, seed: str,
             production: str, bystander: str, rows: int, bucket: str,
             extra: dict[str, str] | None = None) -> Iterator[Bed]:
    """Seed, production and bystander databases and one genuine backup of production
    (local in `directory` and in `bucket`); afterwards, whatever the module made is gone."""
    names = (production, bystander, seed)
    for name in names:
        server.drop_database(name)
    server.create_database(seed)
    load_sample_data(server, seed, order_rows=rows)
    server.create_database(production, template=seed)
    server.create_database(bystander, template=seed)
    s3.create_bucket(bucket)
    environment = {**clean_environment(), **server.environment(production),
                   **s3.environment(), **(extra or {}), "BACKUP_DIR": str(directory),
                   "S3_BUCKET": bucket, "AWS_MAX_ATTEMPTS": "2"}
    report = make_backup(environment)
    baseline = outside(server, ())
    bed = Bed(server=server, s3=s3, production=production, bystander=bystander, seed=seed,
              genuine_directory=directory, genuine=str(report["name"]),
              genuine_key=str(report["s3"]["key"]), environment=environment,
              databases=server.database_names(), roles=set(baseline.roles))
    try:
        yield bed
    finally:
        clean_up(server, baseline, bed.databases - set(names), {})
        for name in names:
            server.drop_database(name)


@contextlib.contextmanager
def watched(bed: Bed) -> Iterator[Outside]:
    """What must not change; afterwards, whatever an attack that worked left is undone."""
    before = outside(bed.server, (bed.production, bed.bystander))
    try:
        yield before
    finally:
        # A failed assertion too: an attack that worked must not spoil the next test.
        clean_up(bed.server, before, bed.databases - {bed.production, bed.bystander},
                 {bed.production: bed.seed, bed.bystander: bed.seed})


def review_fixtures(tag: str) -> tuple[Any, Any, Any, Any]:
    """The fixtures a review's attack module shares, under `tag`'s names (`<tag>_seed`,
    `<tag>_prod`, `<tag>_bystander`, and `<tag>_prod_copy`, which a --target-db restore
    makes): `markers_root`, `markers`, `bed` (module-wide) and `world` (around each test).
    A module binds them: `markers_root, markers, bed, world = review_fixtures("atkr2")`."""
    copy = f"{tag}_prod_copy"

    @pytest.fixture(scope="module")
    def markers_root() -> Iterator[Path]:
        with markers_directory(f"{tag}-markers-") as root:
            yield root

    @pytest.fixture
    def markers(markers_root: Path) -> Path:
        return new_markers(markers_root)

    @pytest.fixture(scope="module")
    def bed(pg_server: PostgresServer, s3_endpoint: S3Endpoint,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
        with laid_out(pg_server, s3_endpoint, tmp_path_factory.mktemp(f"{tag}-genuine"),
                      seed=f"{tag}_seed", production=f"{tag}_prod",
                      bystander=f"{tag}_bystander", rows=200,
                      bucket=f"{tag}-genuine") as laid:
            yield laid
        pg_server.drop_database(copy)

    @pytest.fixture
    def world(bed: Bed) -> Iterator[Outside]:
        with watched(bed) as before:
            yield before
            bed.server.drop_database(copy)

    return markers_root, markers, bed, world
