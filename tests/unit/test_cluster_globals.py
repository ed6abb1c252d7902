"""The globals file read strictly, and the statements a restore builds from it, by equality."""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
from typing import Any

import pytest

from backup_agent.model.cluster_globals import GlobalsError, parse_globals
from backup_agent.postgres.globals_statements import (
    create_database,
    create_role,
    database_privileges,
    database_settings,
    grant_membership,
    refusal,
    setting_clause,
    split_list_setting,
)
from backup_agent.streams.age import new_identity, parse_identities
from backup_agent.streams.globals_file import encode, prove

SCRAM = ("SCRAM-SHA-256$4096:UpaAnE+Tmkw8dg7+9KcDVQ==$ew7PwPocyPD0T20KifP6IS+xg67ScLAl0wmVTeyP4m"
         "Q=:m5Rd5Tdd2P73tXDMa5xd+GqCoo+4PmMytGN0m3qKhfQ=")
ROLE = {"name": "shop_app", "superuser": False, "inherit": True, "createrole": False,
        "createdb": False, "login": True, "replication": False, "bypassrls": False,
        "connection_limit": 5, "valid_until": None,
        "password": SCRAM, "comment": "the app's login", "settings": ["work_mem=16MB"]}
DATABASE = {"owner": "shop_owner", "encoding": "UTF8", "collate": "C.UTF-8",
            "ctype": "C.UTF-8", "locale_provider": "c", "locale": None, "icu_rules": None,
            "connection_limit": 50,
            "acl": [{"grantee": "shop_owner", "grantor": "shop_owner", "privilege": "CREATE",
                     "grantable": False},
                    {"grantee": "shop_owner", "grantor": "shop_owner", "privilege": "CONNECT",
                     "grantable": False},
                    {"grantee": "shop_ro", "grantor": "shop_owner", "privilege": "CONNECT",
                     "grantable": False}],
            "comment": "production shop", "settings": ['search_path="$user", public'],
            "role_settings": [{"role": "shop_ro", "settings": ["statement_timeout=5s"]}]}
DOCUMENT: dict[str, Any] = {"format": 1, "passwords_included": True, "roles": [ROLE],
                            "memberships": [{"role": "shop_ro", "member": "shop_app",
                                             "admin": False, "inherit": True, "set": True}],
                            "database": DATABASE, "fingerprint": {"counts": {"tables": 3}}}


def content(document: dict[str, Any] = DOCUMENT) -> bytes:
    return json.dumps(document).encode()


def changed(path: str, value: Any) -> bytes:
    document = copy.deepcopy(DOCUMENT)
    target: Any = document
    *parents, last = path.split(".")
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[last] = value
    return content(document)


def test_the_server_s_document_reads_back() -> None:
    cluster = parse_globals(content())
    assert cluster.role_names() == ["shop_app"]
    assert cluster.roles[0].password == SCRAM
    assert cluster.database.acl is not None and len(cluster.database.acl) == 3
    assert cluster.fingerprint == {"counts": {"tables": 3}}


@pytest.mark.parametrize(("path", "value"), [
    ("roles.0.name", "x" * 64),
    ("roles.0.name", "a\0b"),
    ("roles.0.password", "plain-text password"),
    ("roles.0.password", "SCRAM-SHA-256$4096:abc'; DROP ROLE x; --"),
    ("roles.0.login", "yes"),
    ("roles.0.connection_limit", "5; DROP"),
    ("roles.0.valid_until", "tomorrow'); DROP TABLE x; --"),
    ("roles.0.settings", ["no equals sign"]),
    ("roles.0.settings", ["bad name; DROP=1"]),
    ("database.encoding", "UTF8'; DROP DATABASE x; --"),
    ("database.locale_provider", "z"),
    ("database.acl", [{"grantee": None, "grantor": "x", "privilege": "ALL; DROP",
                       "grantable": False}]),
    ("format", 2),
])
def test_anything_but_what_the_server_writes_is_refused(path: str, value: Any) -> None:
    with pytest.raises(GlobalsError):
        parse_globals(changed(path, value))


def test_list_settings_split_as_postgresql_does() -> None:
    assert split_list_setting('"$user", public') == ["$user", "public"]
    assert split_list_setting('a,"b ""c"", d" ,e') == ["a", 'b "c", d', "e"]
    assert split_list_setting("") == []
    assert setting_clause('search_path="$user", public') == "\"search_path\" = '$user', 'public'"
    assert setting_clause("DateStyle=ISO, DMY") == "\"DateStyle\" = 'ISO, DMY'"
    assert setting_clause("app.tenant=it's") == "\"app\".\"tenant\" = 'it''s'"
    contexts = {"work_mem": "user", "search_path": "user", "role": "user",
                "session_replication_role": "superuser", "log_statement": "superuser"}
    assert refusal("work_mem=16MB", contexts) is None
    assert refusal("app.tenant=x", contexts) is None  # an extension's placeholder
    assert refusal("force_parallel_mode=off", contexts) == "this server has no such setting"
    assert "only a superuser" in str(refusal("log_statement=all", contexts))
    # From a signed backup, restored by a superuser: superuser settings too, the deny-list not.
    assert refusal("log_statement=all", contexts, superuser_settings=True) is None
    for refused in ("session_preload_libraries=evil", "role=postgres",
                    "local_preload_libraries=x", "session_authorization=postgres",
                    "session_replication_role=replica"):
        assert refusal(refused, contexts) == "never restored"
        assert refusal(refused, contexts, superuser_settings=True) == "never restored"


def test_a_role_is_created_with_its_hash_and_never_superuser() -> None:
    role = parse_globals(changed("roles.0.superuser", True)).roles[0]
    statements, left_out = create_role(role, {"work_mem": "user"})
    assert left_out == []
    assert statements == [
        "CREATE ROLE \"shop_app\" WITH INHERIT NOCREATEROLE NOCREATEDB LOGIN NOBYPASSRLS "
        f"CONNECTION LIMIT 5 PASSWORD '{SCRAM}';",
        "COMMENT ON ROLE \"shop_app\" IS 'the app''s login';",
        "ALTER ROLE \"shop_app\" SET \"work_mem\" = '16MB';"]
    assert not any("SUPERUSER" in statement.replace("NOSUPERUSER", "")
                   for statement in statements)


def test_memberships_keep_their_options_where_the_server_has_them() -> None:
    membership = parse_globals(content()).memberships[0]
    assert grant_membership(membership, 18) == \
        'GRANT "shop_ro" TO "shop_app" WITH INHERIT TRUE, SET TRUE;'
    assert grant_membership(membership, 15) == 'GRANT "shop_ro" TO "shop_app";'


def test_the_database_is_created_with_its_locale_provider() -> None:
    properties = parse_globals(content()).database
    assert create_database("shop_restore", properties, owner="shop_owner", server_major=18) \
        == ("CREATE DATABASE \"shop_restore\" TEMPLATE template0 ENCODING 'UTF8' "
            "LOCALE_PROVIDER libc LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8' OWNER \"shop_owner\";")
    builtin = parse_globals(changed("database.locale_provider", "b")).database
    with pytest.raises(ValueError, match="builtin locale provider, which PostgreSQL 16 lacks"):
        create_database("x", builtin, owner=None, server_major=16)
    document = copy.deepcopy(DOCUMENT)
    document["database"].update(locale_provider="i", locale="en-US")
    icu = parse_globals(content(document)).database
    assert create_database("x", icu, owner=None, server_major=16).endswith(
        "LOCALE_PROVIDER icu LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8' ICU_LOCALE 'en-US';")


def test_database_settings_and_privileges_reach_only_existing_roles() -> None:
    properties = parse_globals(content()).database
    statements, left_out = database_settings("shop", properties, {"shop_owner"},
                                             {"search_path": "user"})
    assert statements == [
        'ALTER DATABASE "shop" CONNECTION LIMIT 50;',
        "COMMENT ON DATABASE \"shop\" IS 'production shop';",
        "ALTER DATABASE \"shop\" SET \"search_path\" = '$user', 'public';"]
    assert left_out == ["the settings of role shop_ro in the database (not a role this "
                        "restore may change)"]
    granted, not_granted = database_privileges("shop", properties, {"shop_owner", "shop_ro"})
    assert granted == ['REVOKE ALL ON DATABASE "shop" FROM PUBLIC;',
                       'REVOKE ALL ON DATABASE "shop" FROM "shop_owner";',
                       'GRANT CREATE, CONNECT ON DATABASE "shop" TO "shop_owner";',
                       'GRANT CONNECT ON DATABASE "shop" TO "shop_ro";']
    assert not_granted == []
    _, missing = database_privileges("shop", properties, {"shop_owner"})
    assert missing == ["CONNECT on the database for shop_ro (no role shop_ro)"]


def test_the_stored_file_is_proven_before_it_is_read() -> None:
    stored = encode(content(), [])
    assert gzip.decompress(stored) == content()
    digest = hashlib.sha256(stored).hexdigest()
    assert prove(stored, expected_sha256=digest, identities=None).role_names() == ["shop_app"]
    with pytest.raises(GlobalsError, match="SHA-256 differs"):
        prove(stored + b"x", expected_sha256=digest, identities=None)
    truncated = stored[:-4]
    with pytest.raises(GlobalsError, match="gzip"):
        prove(truncated, expected_sha256=hashlib.sha256(truncated).hexdigest(),
              identities=None)


def test_an_encrypted_file_holds_no_name_or_hash_in_the_clear() -> None:
    identity_file, public = new_identity()
    stored = encode(content(), [public])
    assert b"shop_app" not in stored and b"SCRAM" not in stored
    keys = parse_identities(identity_file.decode(), "test key")
    digest = hashlib.sha256(stored).hexdigest()
    assert prove(stored, expected_sha256=digest, identities=keys).role_names() == ["shop_app"]
    other = parse_identities(new_identity()[0].decode(), "other key")
    with pytest.raises(GlobalsError, match="does not decrypt"):
        prove(stored, expected_sha256=digest, identities=other)


def test_policies_naming_missing_roles_are_found_statement_by_statement() -> None:
    from backup_agent.postgres.policies import policy_name, policy_roles

    existing = frozenset({"shop_owner", 'We"ird'})
    assert policy_roles(b'CREATE POLICY "ro, sees" ON "My Schema".t FOR SELECT TO shop_ro, '
                        b'"We""ird" USING (true);', existing) == ("ro, sees on My Schema.t",
                                                                   ["shop_ro"])
    assert policy_roles(b"CREATE POLICY open ON s.t USING (true);", existing) == (
        "open on s.t", [])
    assert policy_roles(b"CREATE POLICY mine ON s.t AS RESTRICTIVE FOR ALL TO shop_owner "
                        b"USING (true);", existing) == ("mine on s.t", [])
    assert policy_name('COMMENT ON POLICY "ro, sees" ON "My Schema".t IS \'x\';',
                       "COMMENT ON POLICY ") == "ro, sees on My Schema.t"


def test_valid_until_keeps_infinities_and_eras() -> None:
    for value in ("-infinity", "infinity", "0044-03-15 00:00:00.000000 +00 BC",
                  "2099-12-31 05:00:00.000000 +00 AD"):
        assert parse_globals(changed("roles.0.valid_until", value)).roles[0].valid_until \
            == value
