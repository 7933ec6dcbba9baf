"""A snapshot of a database's catalog as readable names, and the difference of two snapshots.

`aigw migrate --dry-run` takes one before and one after the pending migrations, inside the
transaction it rolls back, to say what they would create and drop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

# The schemas a migration can touch: not the system's, not the given bookkeeping one.
# (`%%` is a literal `%`: the query takes a parameter.)
_USER_SCHEMA = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema', %(skip)s) "
    "AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp%%'"
)

_CATALOG_SQL = f"""
SELECT 'schema ' || n.nspname FROM pg_namespace n WHERE {_USER_SCHEMA}
UNION ALL
SELECT CASE c.relkind WHEN 'i' THEN 'index' WHEN 'I' THEN 'index' WHEN 'v' THEN 'view'
         WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table'
         ELSE 'table' END || ' ' || n.nspname || '.' || c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'i', 'I', 'v', 'm', 'S', 'f') AND {_USER_SCHEMA}
UNION ALL
SELECT 'column ' || n.nspname || '.' || c.relname || '.' || a.attname
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
   AND {_USER_SCHEMA}
UNION ALL
SELECT 'row level security on ' || n.nspname || '.' || c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relrowsecurity AND {_USER_SCHEMA}
UNION ALL
SELECT 'function ' || n.nspname || '.' || p.proname
       || '(' || pg_get_function_identity_arguments(p.oid) || ')'
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {_USER_SCHEMA}
UNION ALL
SELECT 'policy ' || p.polname || ' on ' || n.nspname || '.' || c.relname
  FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
UNION ALL
SELECT 'trigger ' || t.tgname || ' on ' || n.nspname || '.' || c.relname
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE NOT t.tgisinternal
UNION ALL
SELECT 'type ' || n.nspname || '.' || t.typname
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE t.typtype IN ('e', 'd', 'r', 'm') AND {_USER_SCHEMA}
UNION ALL
SELECT 'extension ' || extname FROM pg_extension
UNION ALL
SELECT 'role ' || rolname FROM pg_roles WHERE rolname NOT LIKE 'pg\\_%%'
"""


def catalog_snapshot(conn: psycopg.Connection[Any], skip_schema: str) -> set[str]:
    """Every user-visible object, e.g. `table public.agents`, leaving out `skip_schema`."""
    rows = conn.execute(_CATALOG_SQL, {"skip": skip_schema}).fetchall()
    return {row[0] for row in rows}


def diff_catalog(before: set[str], after: set[str]) -> tuple[list[str], list[str]]:
    """Objects created and dropped; columns listed only for tables that existed before."""

    relations = ("table ", "view ", "materialized view ", "foreign table ")

    def prune(objects: set[str], other: set[str]) -> list[str]:
        changed = sorted(objects - other)
        whole = {o.rsplit(" ", 1)[1] for o in changed if o.startswith(relations)}
        # Columns of a whole new (or wholly dropped) relation are implied by it.
        return [
            o
            for o in changed
            if not (o.startswith("column ") and o.split(" ", 1)[1].rsplit(".", 1)[0] in whole)
        ]

    return prune(after, before), prune(before, after)
