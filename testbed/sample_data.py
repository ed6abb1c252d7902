"""A realistic schema to back up, and a way to compare two databases' content exactly."""

from __future__ import annotations

from testbed.postgres import PostgresServer

DEFAULT_ORDER_ROWS = 300_000

SCHEMA_SQL = """
CREATE SCHEMA shop;
CREATE SCHEMA audit;
CREATE SCHEMA "Reporting";

CREATE TABLE shop.customers (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    email       text UNIQUE,
    note        text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE shop.orders (
    id           bigserial PRIMARY KEY,
    customer_id  bigint NOT NULL REFERENCES shop.customers(id),
    amount       numeric(12, 2) NOT NULL,
    placed_at    timestamptz NOT NULL,
    details      jsonb NOT NULL,
    receipt      bytea
);
CREATE INDEX orders_customer_placed ON shop.orders (customer_id, placed_at);
CREATE SEQUENCE shop.invoice_number START 1000;
CREATE TABLE audit.events (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, message text);
CREATE TABLE "Reporting"."Monthly Totals" ("Month" date PRIMARY KEY, "Total" numeric);
CREATE TABLE shop.attachments (id integer PRIMARY KEY, content oid);

CREATE VIEW shop.big_orders AS SELECT * FROM shop.orders WHERE amount > 900;
CREATE FUNCTION shop.order_total(customer bigint) RETURNS numeric
    LANGUAGE sql STABLE AS $$ SELECT coalesce(sum(amount), 0) FROM shop.orders WHERE customer_id = customer $$;
"""

DATA_SQL = """
INSERT INTO shop.customers (name, email, note, created_at)
SELECT 'Customer ' || g, 'c' || g || '@example.com',
       CASE g % 4 WHEN 0 THEN E'quote '' and "double", tab\\t, newline\\nend'
                  WHEN 1 THEN '한국어 고객 — café ünïcödé 🐘'
                  WHEN 2 THEN NULL
                  ELSE repeat('long text ', 50) END,
       timestamptz '2026-01-01 00:00:00+00' + g * interval '37 minutes'
FROM generate_series(1, 2000) AS g;

INSERT INTO shop.orders (customer_id, amount, placed_at, details, receipt)
SELECT 1 + g % 2000, round((g % 100000) / 100.0, 2),
       timestamptz '2026-01-01 00:00:00+09' + g * interval '11 seconds',
       jsonb_build_object('sku', 'SKU-' || g % 977, 'qty', g % 7, 'tags', jsonb_build_array('a', g % 3),
                          'note', CASE WHEN g % 1000 = 0 THEN E'line1\\nline2 \\'q\\'' ELSE NULL END),
       CASE WHEN g % 50 = 0 THEN decode(md5(g::text), 'hex') ELSE NULL END
FROM generate_series(1, {order_rows}) AS g;

SELECT setval('shop.invoice_number', 4242);
INSERT INTO audit.events (message) SELECT 'event ' || g FROM generate_series(1, 500) AS g;
INSERT INTO "Reporting"."Monthly Totals"
SELECT date_trunc('month', placed_at)::date, sum(amount) FROM shop.orders GROUP BY 1;
INSERT INTO shop.attachments VALUES (1, lo_from_bytea(0, convert_to('large object payload ✓', 'UTF8')));
ANALYZE;
"""

# Every user table's content as one md5 (psql's \gexec runs one generated query a table,
# since the wheel's server has no libxml for query_to_xml), plus what is not table rows.
_PER_TABLE = r"""
SELECT format('SELECT %L || ''='' || {select} FROM %I.%I t',
              format('%I.%I', n.nspname, c.relname), n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY 1 \gexec
"""
_TABLE_DIGEST = "md5(coalesce(string_agg(t::text, chr(10) ORDER BY t::text), ''''))"
_TABLE_COUNT = "count(*)"

FINGERPRINT_SQL = _PER_TABLE.format(select=_TABLE_DIGEST) + """
SELECT 'sequence shop.invoice_number=' || last_value FROM shop.invoice_number;
SELECT 'large objects=' || coalesce(string_agg(md5(lo_get(oid)), ',' ORDER BY oid), '')
FROM pg_largeobject_metadata;
SELECT 'view=' || md5(pg_get_viewdef('shop.big_orders'::regclass));
SELECT 'function=' || md5(prosrc) FROM pg_proc WHERE proname = 'order_total';
SELECT 'indexes=' || string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes
WHERE schemaname NOT IN ('pg_catalog');
"""


def load_sample_data(server: PostgresServer, database: str, *,
                     order_rows: int = DEFAULT_ORDER_ROWS) -> None:
    """Create the sample schema in `database` and fill it."""
    server.psql(database, SCHEMA_SQL + DATA_SQL.format(order_rows=order_rows))


def _pairs(output: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


def fingerprint(server: PostgresServer, database: str) -> dict[str, str]:
    """Return a name -> digest map that is equal for two databases with identical content."""
    return _pairs(server.psql(database, FINGERPRINT_SQL))


def row_counts(server: PostgresServer, database: str) -> dict[str, int]:
    """Return the row count of every user table, keyed by its quoted qualified name."""
    output = server.psql(database, _PER_TABLE.format(select=_TABLE_COUNT))
    return {name: int(count) for name, count in _pairs(output).items()}
