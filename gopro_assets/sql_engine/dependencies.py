"""What a query reads, from its sqlglot syntax tree, scope by scope (no Dagster, no DuckDB).

A name in ``FROM``/``JOIN`` is a table unless a CTE of that name is visible where it is
used: sqlglot's scope traversal (``sqlglot.optimizer.scope.traverse_scope``) resolves each
scope's sources, so a CTE hides a table only inside the query that defines it and the
queries nested in it, never in a sibling subquery or an outer query. Table functions
(``range(...)``, ``read_parquet(...)``, a DuckDB table macro) are function nodes in the
tree and ``unnest`` is a table-function scope: neither is a table, whatever its name.
``getvariable('x')`` calls are read from the tree too (run settings reach the SQL as DuckDB
variables, see ``runner.connect``).

Two names are provided by the engine, not read from the lake:

- ``<input>__changed``: the keys of an input of an incremental model that changed since its
  last computation (``runner.register_changes``);
- ``<model>__stored``: a model's own table as it was before the run, readable by its data
  tests (``runner.run_tests``), e.g. the previous month a statement month opens from (R11).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.scope import Scope, ScopeType, traverse_scope

CHANGED_SUFFIX = "__changed"  # <input>__changed: see runner.register_changes
STORED_SUFFIX = "__stored"  # <model>__stored: see runner.run_tests
ENGINE_SUFFIXES = (CHANGED_SUFFIX, STORED_SUFFIX)


@dataclass(frozen=True)
class SqlDependencies:
    """What one query reads. Every field is sorted and free of repeats."""

    tables: tuple[str, ...]  # tables of the lake (or models) it reads; CTE names resolved per scope
    engine_relations: tuple[str, ...]  # <input>__changed / <model>__stored names it reads
    table_functions: tuple[str, ...]  # lower-case names of the table functions it calls (range, unnest, ...)
    variables: tuple[str, ...]  # names given to getvariable('...')


def _function_name(node: exp.Expression) -> str:
    """Lower-case SQL name of a function node as the query spells it (sqlglot normalises
    ``range(a, b)`` to GenerateSeries but prints it back as RANGE)."""
    if isinstance(node, exp.Anonymous):
        return node.name.lower()
    return node.sql(dialect="duckdb").split("(", 1)[0].strip().lower()


def _variable_name(call: exp.Anonymous, sql: str) -> str:
    args = call.expressions
    if len(args) != 1 or not isinstance(args[0], exp.Literal) or not args[0].is_string:
        raise ValueError(f"getvariable() takes one constant name here: {call.sql(dialect='duckdb')!r} in {sql[:200]!r}")
    return args[0].this


@functools.lru_cache(maxsize=1024)
def sql_dependencies(sql: str) -> SqlDependencies:
    """Parse ``sql`` (one DuckDB statement) and return what it reads. Cached per text: the
    engine asks on every run of a model and sqlglot takes milliseconds per parse."""
    tree = sqlglot.parse_one(sql, dialect="duckdb")
    tables: set[str] = set()
    engine: set[str] = set()
    functions: set[str] = set()
    for scope in traverse_scope(tree):
        if scope.scope_type == ScopeType.UDTF:  # unnest(...) AS t(x), LATERAL f(...): a table function
            udtf = scope.expression
            call = udtf if isinstance(udtf, exp.Unnest) else udtf.this
            if isinstance(call, exp.Func):
                functions.add(_function_name(call))
        # scope.sources: every name this scope selects from -> a Scope (a CTE visible here,
        # a derived table) or an exp.Table (a table, or a table function call)
        for source in scope.sources.values():
            if isinstance(source, Scope) or not isinstance(source, exp.Table):
                continue
            if isinstance(source.this, exp.Func):
                functions.add(_function_name(source.this))
            elif source.name:
                name = source.name
                (engine if name.endswith(ENGINE_SUFFIXES) else tables).add(name)
    variables = {
        _variable_name(call, sql) for call in tree.find_all(exp.Anonymous) if call.name.lower() == "getvariable"
    }
    return SqlDependencies(
        tables=tuple(sorted(tables)),
        engine_relations=tuple(sorted(engine)),
        table_functions=tuple(sorted(functions)),
        variables=tuple(sorted(variables)),
    )
