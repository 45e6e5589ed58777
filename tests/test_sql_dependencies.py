"""What a SQL model reads, from its sqlglot tree scope by scope
(``gopro_assets/sql_engine/dependencies.py``): hand-written queries whose tables, table
functions and ``getvariable`` names are worked out by hand.

A CTE hides a table only inside the query that defines it (and the queries nested in it);
table functions and ``getvariable`` calls are function nodes of the tree, whatever their
names, never a list of names or a regular expression over the text.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from gopro_assets.sql_engine.dependencies import sql_dependencies
from gopro_assets.sql_engine.properties import model_files
from gopro_assets.sql_engine.runner import MACROS_DIR, SQL_ROOT, table_refs

# (id, sql, tables, table functions, getvariable names)
CASES = [
    ("plain_join", "SELECT * FROM a JOIN b USING (k)", ["a", "b"], [], []),
    (
        "asof_anti_semi_joins",
        "SELECT * FROM a ASOF LEFT JOIN b ON a.k = b.k AND a.t >= b.t ANTI JOIN c USING (k) SEMI JOIN d USING (k)",
        ["a", "b", "c", "d"],
        [],
        [],
    ),
    # -- CTEs, scope by scope
    ("cte_hides_the_table_it_names", "WITH a AS (SELECT * FROM x) SELECT * FROM a", ["x"], [], []),
    (
        "cte_chain",
        "WITH a AS (SELECT * FROM x), b AS (SELECT * FROM a JOIN y USING (k)) SELECT * FROM b",
        ["x", "y"],
        [],
        [],
    ),
    # a CTE reads the real table of its own name (a non-recursive CTE does not see itself)
    ("cte_reads_the_table_it_shadows", "WITH a AS (SELECT * FROM a WHERE ok) SELECT * FROM a", ["a"], [], []),
    # the CTE t is defined inside the derived table s: the outer FROM t is the real table t
    (
        "cte_in_a_derived_table_does_not_hide_the_outer_table",
        "SELECT * FROM (WITH t AS (SELECT 1 AS k) SELECT k FROM t) AS s, t",
        ["t"],
        [],
        [],
    ),
    # ... nor in a sibling subquery of the WHERE clause
    (
        "cte_in_a_subquery_does_not_hide_a_sibling_subquery",
        "SELECT * FROM (WITH t AS (SELECT 1 AS k) SELECT k FROM t) AS s WHERE k IN (SELECT k FROM t)",
        ["t"],
        [],
        [],
    ),
    (
        "cte_in_exists_does_not_hide_in_an_in_subquery",
        "SELECT * FROM a WHERE EXISTS (WITH b AS (SELECT 1 AS k) SELECT * FROM b) AND k IN (SELECT k FROM b)",
        ["a", "b"],
        [],
        [],
    ),
    # a top-level CTE is visible in every query nested in the statement
    (
        "cte_referenced_from_nested_subqueries",
        "WITH t AS (SELECT * FROM base) SELECT * FROM (SELECT * FROM t) AS s WHERE k IN (SELECT k FROM t)",
        ["base"],
        [],
        [],
    ),
    (
        "cte_referenced_from_a_correlated_subquery",
        "WITH recent AS (SELECT * FROM events) SELECT s.*, (SELECT count(*) FROM recent AS r WHERE r.id = s.id) AS n FROM subscribers AS s",
        ["events", "subscribers"],
        [],
        [],
    ),
    (
        "cte_inside_a_cte",
        "WITH outer_cte AS (WITH inner_cte AS (SELECT * FROM x) SELECT * FROM inner_cte) SELECT * FROM outer_cte, inner_cte",
        ["inner_cte", "x"],
        [],
        [],
    ),
    ("lateral_subquery", "SELECT * FROM a, LATERAL (SELECT * FROM b WHERE b.k = a.k) AS l", ["a", "b"], [], []),
    # -- set operations: every branch
    (
        "union_except_branches",
        "SELECT k FROM a UNION ALL SELECT k FROM b EXCEPT SELECT k FROM c",
        ["a", "b", "c"],
        [],
        [],
    ),
    ("union_branch_reads_a_cte", "WITH a AS (SELECT 1 AS k) SELECT k FROM a UNION SELECT k FROM a2", ["a2"], [], []),
    (
        "union_in_a_cte",
        "WITH u AS (SELECT k FROM a UNION SELECT k FROM b) SELECT * FROM u JOIN c USING (k)",
        ["a", "b", "c"],
        [],
        [],
    ),
    # -- table functions: function nodes, not tables, whatever their name
    ("range_is_a_table_function", "SELECT * FROM range(1, 3) AS r(d)", [], ["range"], []),
    (
        "known_table_functions",
        "SELECT * FROM generate_series(1, 2) AS g(x), read_parquet('x.parquet') AS p, unnest([1, 2]) AS u(v)",
        [],
        ["generate_series", "read_parquet", "unnest"],
        [],
    ),
    ("unknown_table_function", "SELECT * FROM read_json_auto('y.json') AS j", [], ["read_json_auto"], []),
    ("lateral_unnest", "SELECT * FROM a, LATERAL unnest(a.xs) AS u(x)", ["a"], ["unnest"], []),
    # a real table that happens to be called range: quoted, it is a table (no list of names)
    (
        "a_table_named_like_a_function",
        'SELECT * FROM "range" JOIN range(1, 3) AS r(d) ON true',
        ["range"],
        ["range"],
        [],
    ),
    # -- getvariable: calls in the tree, not text matches
    (
        "getvariable_names",
        "SELECT getvariable('month') AS m FROM t WHERE x = GETVARIABLE('first_month')",
        ["t"],
        [],
        ["first_month", "month"],
    ),
    (
        "getvariable_in_a_table_function",
        "SELECT * FROM range(CAST(getvariable('range_start') AS TIMESTAMPTZ), CAST(getvariable('range_end') AS TIMESTAMPTZ), INTERVAL 1 DAY) AS r(d)",
        [],
        ["range"],
        ["range_end", "range_start"],
    ),
    (
        "getvariable_in_a_cte_and_a_subquery",
        "WITH p AS (SELECT getvariable('a') AS a) SELECT * FROM p, t WHERE k IN (SELECT k FROM u WHERE v = getvariable('b'))",
        ["t", "u"],
        [],
        ["a", "b"],
    ),
    (
        "getvariable_in_a_string_or_comment_is_not_a_call",
        "-- getvariable('commented')\nSELECT 'getvariable(''quoted'')' AS s FROM t",
        ["t"],
        [],
        [],
    ),
    # -- macros: the engine does not expand them; scalar macro calls are functions, a DuckDB
    # table macro is a table function
    (
        "scalar_macro_calls",
        "SELECT round_half_up_div(x, 60) AS c, ineligible_reason(a, b, c, d, e, f, t, 7) AS r FROM t",
        ["t"],
        [],
        [],
    ),
    ("table_macro_call", "SELECT * FROM my_table_macro(3) AS m", [], ["my_table_macro"], []),
]


@pytest.mark.parametrize(("sql", "tables", "functions", "variables"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_dependencies_of_hand_written_queries(sql, tables, functions, variables):
    deps = sql_dependencies(sql)
    assert list(deps.tables) == tables
    assert list(deps.table_functions) == functions
    assert list(deps.variables) == variables
    assert deps.engine_relations == ()
    assert table_refs(sql) == tables


def test_engine_relations_are_not_tables():
    # <input>__changed (incremental models) and <model>__stored (data tests) are registered
    # by the engine, not read from the lake
    deps = sql_dependencies("SELECT * FROM m AS kept ANTI JOIN a__changed USING (k) JOIN m__stored USING (k)")
    assert deps.tables == ("m",)
    assert deps.engine_relations == ("a__changed", "m__stored")


def test_table_refs_leaves_out_the_model_itself():
    sql = "SELECT * FROM revenue_share_statements AS s JOIN revenue_share_allocations USING (subscriber_id)"
    assert table_refs(sql) == ["revenue_share_allocations", "revenue_share_statements"]
    assert table_refs(sql, "revenue_share_statements") == ["revenue_share_allocations"]


def test_a_getvariable_without_a_constant_name_is_refused():
    with pytest.raises(ValueError, match="constant name"):
        sql_dependencies("SELECT getvariable(name_column) FROM t")


@pytest.mark.parametrize(
    "path",
    [*model_files(SQL_ROOT), *sorted((SQL_ROOT / "queries").glob("*.sql"))],
    ids=lambda p: f"{p.parent.name}/{p.stem}",
)
def test_every_model_and_query_parses_scope_by_scope(path: Path):
    # every table the tree holds is either a dependency, a CTE visible where it is used, or
    # a table function; nothing is left unexplained
    sql = path.read_text()
    deps = sql_dependencies(sql)
    tree = sqlglot.parse_one(sql, dialect="duckdb")
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    named = {t.name for t in tree.find_all(exp.Table) if t.name}
    assert named <= set(deps.tables) | set(deps.engine_relations) | ctes
    assert not set(deps.tables) & ctes, "a CTE name read as a table"


def test_macros_are_scalar_and_read_no_table():
    # The macros (CREATE MACRO) are loaded by the engine on every connection; none reads a
    # table, so a model calling one depends on nothing more than its own FROM clauses.
    for path in sorted(MACROS_DIR.glob("*.sql")):
        for statement in sqlglot.parse(path.read_text(), dialect="duckdb"):
            if statement is None:
                continue
            assert isinstance(statement, exp.Create), path
            assert not list(statement.expression.find_all(exp.Table)), path
