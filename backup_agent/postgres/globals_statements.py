"""The statements a restore builds from a backup's globals: pure functions, tested by equality.

Every name goes through quote_identifier and every value through quote_literal; nothing of
the globals file is ever sent as SQL text of its own. What a backup may not do is left out
here, by rule rather than by trust:
- SUPERUSER and REPLICATION are never granted (a superuser reaches every database and the
  server's files); the restore says so and the operator grants them by hand if wanted;
- memberships are granted only between roles the restore itself created, or in the
  predefined roles of SAFE_MEMBERSHIPS (monitoring): never in an existing role, never
  pg_read_server_files, pg_write_all_data and the like;
- a setting is set only when this server knows it and any user may set it (context
  `user` in pg_settings), or it is an extension's placeholder (`app.tenant`): never
  `session_replication_role`, `log_statement`, `*_preload_libraries`, `role`, ...
"""

from __future__ import annotations

from collections.abc import Mapping

from backup_agent.model.cluster_globals import DatabaseProperties, Grant, Membership, Role
from backup_agent.postgres.admin import quote_identifier, quote_literal

WITHHELD_ATTRIBUTES = ("superuser", "replication")
SAFE_MEMBERSHIPS = frozenset({"pg_monitor", "pg_read_all_settings", "pg_read_all_stats",
                              "pg_stat_scan_tables"})
REFUSED_SETTINGS = frozenset({"session_preload_libraries", "local_preload_libraries",
                              "shared_preload_libraries", "role", "session_authorization",
                              "session_replication_role"})
# pg_settings of the target server, name (lower case) -> context, as rebuild.py reads it.
SETTINGS_CONTEXT_SQL = """
SELECT COALESCE(pg_catalog.json_object_agg(pg_catalog.lower(name), context), '{}'::json)::text
FROM pg_catalog.pg_settings;
"""
# Settings whose value is a list of names: pg_dump quotes each element (GUC_LIST_QUOTE).
LIST_SETTINGS = frozenset({"search_path", "temp_tablespaces"})
PROVIDER_KEYWORDS = {"c": "libc", "i": "icu", "b": "builtin"}
PROVIDER_SINCE = {"c": 15, "i": 15, "b": 17}


def split_list_setting(value: str) -> list[str]:
    """Split a list setting's stored value (`"$user", public`) into its names, as
    PostgreSQL's SplitGUCList does: commas between items, double quotes around some."""
    items: list[str] = []
    position, length = 0, len(value)
    while position <= length:
        while position < length and value[position].isspace():
            position += 1
        if position < length and value[position] == '"':
            end = position + 1
            item = []
            while end < length:
                if value[end] == '"':
                    if end + 1 < length and value[end + 1] == '"':
                        item.append('"')
                        end += 2
                        continue
                    break
                item.append(value[end])
                end += 1
            items.append("".join(item))
            position = end + 1
        else:
            end = value.find(",", position)
            end = length if end < 0 else end
            word = value[position:end].strip()
            if word or end < length:
                items.append(word)
            position = end
        while position < length and value[position].isspace():
            position += 1
        if position >= length:
            break
        position += 1  # the comma
    return items


def refusal(setting: str, contexts: Mapping[str, str], *,
            superuser_settings: bool = False) -> str | None:
    """Why a stored `name=value` is not restored on a server with these settings, or None.

    `superuser_settings`: the backup is signed by a trusted key and the restoring user is a
    superuser, so settings of context `superuser` (lc_messages, log_statement) come back too;
    the deny-list never does."""
    name = setting.partition("=")[0].lower()
    context = contexts.get(name)
    if name in REFUSED_SETTINGS:
        return "never restored"
    if context is None and "." not in name:
        return "this server has no such setting"
    allowed = ("user", "superuser") if superuser_settings else ("user",)
    if context is not None and context not in allowed:
        return ("only a superuser may set it, from a signed backup: set it by hand if you "
                "want it")
    return None


def setting_clause(setting: str) -> str:
    """`name = 'value'` for a stored `name=value` (check `refusal` first)."""
    name, _, value = setting.partition("=")
    quoted_name = ".".join(quote_identifier(part) for part in name.split("."))
    if name.lower() in LIST_SETTINGS:
        return f"{quoted_name} = " + ", ".join(quote_literal(item)
                                               for item in split_list_setting(value))
    return f"{quoted_name} = {quote_literal(value)}"


def create_role(role: Role, contexts: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """CREATE ROLE with the recorded attributes (never SUPERUSER or REPLICATION), its
    password hash, comment and role-wide settings; and the settings left out."""
    attributes = [
        "INHERIT" if role.inherit else "NOINHERIT",
        "CREATEROLE" if role.createrole else "NOCREATEROLE",
        "CREATEDB" if role.createdb else "NOCREATEDB",
        "LOGIN" if role.login else "NOLOGIN",
        "BYPASSRLS" if role.bypassrls else "NOBYPASSRLS",
        f"CONNECTION LIMIT {role.connection_limit:d}",
    ]
    if role.password is not None:
        attributes.append(f"PASSWORD {quote_literal(role.password)}")
    if role.valid_until is not None:
        attributes.append(f"VALID UNTIL {quote_literal(role.valid_until)}")
    name = quote_identifier(role.name)
    statements = [f"CREATE ROLE {name} WITH {' '.join(attributes)};"]
    if role.comment is not None:
        statements.append(f"COMMENT ON ROLE {name} IS {quote_literal(role.comment)};")
    left_out = []
    for setting in role.settings:
        reason = refusal(setting, contexts)
        if reason is None:
            statements.append(f"ALTER ROLE {name} SET {setting_clause(setting)};")
        else:
            left_out.append(f"role {role.name}'s setting {setting.partition('=')[0]} "
                            f"({reason})")
    return statements, left_out


def grant_membership(membership: Membership, server_major: int) -> str:
    options = []
    if membership.admin:
        options.append("ADMIN TRUE" if server_major >= 16 else "ADMIN OPTION")
    if server_major >= 16:
        if membership.inherit is not None:
            options.append(f"INHERIT {str(membership.inherit).upper()}")
        if membership.set is not None:
            options.append(f"SET {str(membership.set).upper()}")
    return (f"GRANT {quote_identifier(membership.role)} TO {quote_identifier(membership.member)}"
            + (f" WITH {', '.join(options)}" if options else "") + ";")


def create_database(name: str, properties: DatabaseProperties, *, owner: str | None,
                    server_major: int) -> str:
    """CREATE DATABASE with the recorded encoding, locale provider and locales.

    Raises ValueError when this server cannot make such a database (a provider it lacks)."""
    provider = properties.locale_provider
    if server_major < PROVIDER_SINCE[provider] and provider != "c":
        raise ValueError(f"the backup's database uses the {PROVIDER_KEYWORDS[provider]} "
                         f"locale provider, which PostgreSQL {server_major} lacks")
    clauses = ["TEMPLATE template0", f"ENCODING {quote_literal(properties.encoding)}"]
    if server_major >= 15:
        clauses.append(f"LOCALE_PROVIDER {PROVIDER_KEYWORDS[provider]}")
    clauses += [f"LC_COLLATE {quote_literal(properties.collate)}",
                f"LC_CTYPE {quote_literal(properties.ctype)}"]
    if provider == "i" and properties.locale is not None:
        clauses.append(f"ICU_LOCALE {quote_literal(properties.locale)}")
    if provider == "b" and properties.locale is not None:
        clauses.append(f"BUILTIN_LOCALE {quote_literal(properties.locale)}")
    if provider == "i" and properties.icu_rules is not None:
        clauses.append(f"ICU_RULES {quote_literal(properties.icu_rules)}")
    if owner is not None:
        clauses.append(f"OWNER {quote_identifier(owner)}")
    return f"CREATE DATABASE {quote_identifier(name)} {' '.join(clauses)};"


def database_settings(name: str, properties: DatabaseProperties, existing_roles: set[str],
                      contexts: Mapping[str, str], *,
                      superuser_settings: bool = False) -> tuple[list[str], list[str]]:
    """The comment, connection limit, settings and per-role settings (for `existing_roles`:
    the caller passes only the roles it may change); and what was left out."""
    database = quote_identifier(name)
    statements = [f"ALTER DATABASE {database} CONNECTION LIMIT "
                  f"{properties.connection_limit:d};"]
    left_out = []
    if properties.comment is not None:
        statements.append(f"COMMENT ON DATABASE {database} IS "
                          f"{quote_literal(properties.comment)};")
    for setting in properties.settings:
        reason = refusal(setting, contexts, superuser_settings=superuser_settings)
        if reason is not None:
            left_out.append(f"the database setting {setting.partition('=')[0]} ({reason})")
            continue
        statements.append(f"ALTER DATABASE {database} SET {setting_clause(setting)};")
    for role, settings in properties.role_settings:
        if role not in existing_roles:
            left_out.append(f"the settings of role {role} in the database (not a role this "
                            "restore may change)")
            continue
        for setting in settings:
            reason = refusal(setting, contexts, superuser_settings=superuser_settings)
            if reason is not None:
                left_out.append(f"role {role}'s setting {setting.partition('=')[0]} in the "
                                f"database ({reason})")
                continue
            statements.append(f"ALTER ROLE {quote_identifier(role)} IN DATABASE {database} "
                              f"SET {setting_clause(setting)};")
    return statements, left_out


def database_privileges(name: str, properties: DatabaseProperties,
                        existing_roles: set[str]) -> tuple[list[str], list[str]]:
    """Make the database's ACL the recorded one, entry by entry in its order."""
    if properties.acl is None:
        return [], []  # the default privileges, as a new database has them
    database = quote_identifier(name)
    statements = [f"REVOKE ALL ON DATABASE {database} FROM PUBLIC;",
                  f"REVOKE ALL ON DATABASE {database} FROM {quote_identifier(properties.owner)};"]
    left_out = []
    for grantee, grantor, grantable, privileges in _grouped(properties.acl):
        missing = sorted({role for role in (grantee, grantor)
                          if role is not None and role not in existing_roles})
        if missing:
            left_out.append(f"{', '.join(privileges)} on the database for "
                            f"{grantee or 'PUBLIC'} (no role {', '.join(missing)})")
            continue
        statement = (f"GRANT {', '.join(privileges)} ON DATABASE {database} TO "
                     f"{quote_identifier(grantee) if grantee else 'PUBLIC'}"
                     + (" WITH GRANT OPTION" if grantable else "") + ";")
        if grantor != properties.owner:  # as pg_dump does: the grantor grants it
            statement = f"SET ROLE {quote_identifier(grantor)}; {statement} RESET ROLE;"
        statements.append(statement)
    return statements, left_out


def _grouped(acl: tuple[Grant, ...]) -> list[tuple[str | None, str, bool, list[str]]]:
    """Consecutive entries for one grantee, grantor and grant option, as one GRANT."""
    groups: list[tuple[str | None, str, bool, list[str]]] = []
    for grant in acl:
        if groups and groups[-1][:3] == (grant.grantee, grant.grantor, grant.grantable):
            groups[-1][3].append(grant.privilege)
        else:
            groups.append((grant.grantee, grant.grantor, grant.grantable, [grant.privilege]))
    return groups
