"""The SQL models' YAML, in dbt's properties schema (no Dagster, no DuckDB).

``dbt_like_sql/`` holds, besides the models (``<layer>/<model>.sql`` + ``<model>.yml``):

- ``sources.yml``: ``sources:`` - the tables the models read that Python assets write
  (source ``lake``), with their descriptions;
- ``groups.yml``: ``groups:`` - the asset groups, each with its owner (dbt: every group has one).

A model's ``.yml`` is a dbt properties file with one model (format and an example:
``dbt_like_sql/README.md``)::

    version: 2
    models:
      - name: <the .sql file's stem>
        description: ...
        config:
          materialized: table | incremental
          incremental_strategy: insert_overwrite | changed_keys | merge   # incremental only
          partition_by: {field: <column>, data_type: date | string, granularity: day | month}
          unique_key: [<column>, ...]                             # incremental_strategy merge
          group: <a group of groups.yml>
          meta:
            changed_keys: {<input>: [<key column>, ...]}          # changed_keys and merge
            delta_partition_by: [<column>, ...]                   # merge: the Delta table's partitions
            dagster: {kinds: [...], owners: [...]}                # optional, override the defaults
        columns:
          - name: ...
            description: ...
            data_type: bigint | varchar | ...                     # bigint columns leave as int64
            data_tests: [not_null, unique, non_negative,
                         {accepted_values: {arguments: {values: [...]}}},
                         {relationships: {arguments: {to: "ref('m')" | "source('lake', 't')", field: c}}}]
        data_tests:
          - dbt_utils.unique_combination_of_columns: {arguments: {combination_of_columns: [...]}}
          - name: <check name>
            description: ...
            config: {severity: error | warn}
            sql: <a SELECT returning the offending rows>

Every mapping is read strictly: an unknown or missing key fails with the file's name, so a
typo cannot silently drop a test or a setting.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

SOURCES_FILE = "sources.yml"
GROUPS_FILE = "groups.yml"
DEFAULT_KINDS = ("duckdb", "sql", "delta")
# dbt's generic tests, plus ``non_negative``: a generic test of this project (in dbt it
# would be ``dbt_utils.accepted_range`` with ``min_value: 0``)
COLUMN_TESTS = {
    "not_null": set(),
    "unique": set(),
    "accepted_values": {"values"},
    "relationships": {"to", "field"},
    "non_negative": set(),
}
UNIQUE_COMBINATION = "dbt_utils.unique_combination_of_columns"
SEVERITIES = ("error", "warn")
GRANULARITY = {"day": "daily", "month": "monthly"}
STRATEGIES = ("insert_overwrite", "changed_keys", "merge")
_REF = re.compile(r"^\s*ref\(\s*'(?P<model>\w+)'\s*\)\s*$")
_SOURCE = re.compile(r"^\s*source\(\s*'(?P<source>\w+)'\s*,\s*'(?P<table>\w+)'\s*\)\s*$")


class PropertiesError(ValueError):
    """A YAML file of dbt_like_sql/ that does not follow the schema (the message names it)."""


@dataclass(frozen=True)
class SourceTable:
    source: str
    name: str
    description: str


@dataclass(frozen=True)
class Project:
    """What the models may read: each other, and the declared source tables."""

    root: Path
    sources: dict[str, SourceTable]  # table name -> declaration
    groups: dict[str, tuple[str, ...]]  # group -> Dagster owners
    models: frozenset[str]  # model names (the .sql files)


@dataclass(frozen=True)
class TestSpec:
    """One data test as declared. ``kind``: a generic test name, ``unique_combination`` or
    ``singular`` (its own ``sql``)."""

    name: str
    kind: str
    severity: str = "error"
    description: str = ""
    column: str | None = None
    arguments: dict = field(default_factory=dict)
    sql: str | None = None


@dataclass(frozen=True)
class ModelProperties:
    name: str
    description: str
    materialized: str
    group: str
    owners: tuple[str, ...]
    kinds: tuple[str, ...]
    partition: dict | None  # {"kind": "daily"|"monthly", "column": ...}
    changed_keys: dict[str, list[str]]
    columns: dict[str, str]  # name -> description
    column_types: dict[str, str]  # name -> DuckDB type (upper case), where declared
    tests: tuple[TestSpec, ...]
    strategy: str | None = None  # incremental_strategy
    unique_key: tuple[str, ...] = ()  # merge: the key of a row
    delta_partition_by: tuple[str, ...] = ()  # merge: the Delta table's partition columns


def _mapping(where: str, value, allowed: set[str], required: set[str] = frozenset()) -> dict:
    if not isinstance(value, dict):
        raise PropertiesError(f"{where}: expected a mapping, got {type(value).__name__}: {value!r}")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise PropertiesError(f"{where}: unknown key(s) {unknown} (allowed: {sorted(allowed)})")
    missing = sorted(required - set(value))
    if missing:
        raise PropertiesError(f"{where}: missing key(s) {missing}")
    return value


def _list(where: str, value) -> list:
    if not isinstance(value, list):
        raise PropertiesError(f"{where}: expected a list, got {type(value).__name__}: {value!r}")
    return value


def _text(where: str, value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PropertiesError(f"{where}: expected non-empty text, got {value!r}")
    return value


def _names(where: str, value) -> list[str]:
    items = _list(where, value)
    if not items or not all(isinstance(v, str) and v for v in items):
        raise PropertiesError(f"{where}: expected a non-empty list of names, got {value!r}")
    return items


def _load(path: Path, top_key: str) -> list:
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise PropertiesError(f"{path}: not valid YAML: {exc}") from exc
    doc = _mapping(str(path), doc, {"version", top_key}, {"version", top_key})
    if doc["version"] != 2:
        raise PropertiesError(f"{path}: version must be 2 (dbt's properties files), got {doc['version']!r}")
    return _list(f"{path}: {top_key}", doc[top_key])


def _owner(where: str, owner) -> str:
    """A dbt group owner as a Dagster owner: its e-mail, else ``team:<name>``."""
    owner = _mapping(where, owner, {"name", "email"})
    if owner.get("email"):
        return _text(f"{where}.email", owner["email"])
    if owner.get("name"):
        return "team:" + _text(f"{where}.name", owner["name"])
    raise PropertiesError(f"{where}: a group owner needs a name or an email (dbt)")


@functools.lru_cache(maxsize=16)
def _read_project(root: Path, _stamp: tuple) -> Project:
    sources: dict[str, SourceTable] = {}
    path = root / SOURCES_FILE
    for i, src in enumerate(_load(path, "sources")):
        where = f"{path}: sources[{i}]"
        src = _mapping(where, src, {"name", "description", "tables"}, {"name", "description", "tables"})
        for j, table in enumerate(_list(f"{where}.tables", src["tables"])):
            twhere = f"{where}.tables[{j}]"
            table = _mapping(twhere, table, {"name", "description"}, {"name", "description"})
            name = _text(f"{twhere}.name", table["name"])
            if name in sources:
                raise PropertiesError(f"{twhere}: table {name!r} is declared twice")
            sources[name] = SourceTable(src["name"], name, _text(f"{twhere}.description", table["description"]))
    groups: dict[str, tuple[str, ...]] = {}
    path = root / GROUPS_FILE
    for i, group in enumerate(_load(path, "groups")):
        where = f"{path}: groups[{i}]"
        group = _mapping(where, group, {"name", "description", "owner"}, {"name", "owner"})
        groups[_text(f"{where}.name", group["name"])] = (_owner(f"{where}.owner", group["owner"]),)
    models = frozenset(p.stem for p in model_files(root))
    clash = sorted(models & set(sources))
    if clash:
        raise PropertiesError(f"{root / SOURCES_FILE}: {clash} are models of {root}, not sources")
    return Project(root, sources, groups, models)


def model_files(root: Path) -> list[Path]:
    """The models' .sql files: ``<layer>/<model>.sql`` (macros/ and queries/ hold none)."""
    return [p for p in sorted(root.glob("*/*.sql")) if p.parent.name not in ("macros", "queries")]


def read_project(root: Path) -> Project:
    """The sources, groups and model names under ``root`` (re-read when a file changes)."""
    files = [root / SOURCES_FILE, root / GROUPS_FILE, *model_files(root)]
    stamp = tuple((str(p), p.stat().st_mtime_ns if p.exists() else None) for p in files)
    for p in files[:2]:
        if not p.exists():
            raise PropertiesError(f"{p}: missing (dbt_like_sql/README.md)")
    return _read_project(root, stamp)


def relation_target(where: str, text, project: Project) -> str:
    """The table a ``relationships`` test points to: ``ref('model')`` or ``source('lake', 'table')``."""
    text = _text(where, text)
    if m := _REF.match(text):
        if m["model"] not in project.models:
            raise PropertiesError(f"{where}: ref({m['model']!r}) is not a model of {project.root}")
        return m["model"]
    if m := _SOURCE.match(text):
        declared = project.sources.get(m["table"])
        if declared is None or declared.source != m["source"]:
            raise PropertiesError(f"{where}: {text} is not declared in {project.root / SOURCES_FILE}")
        return m["table"]
    raise PropertiesError(f"{where}: expected ref('<model>') or source('<source>', '<table>'), got {text!r}")


def _test_entry(where: str, entry) -> tuple[str, dict]:
    """(test name, its mapping) of a generic test entry: ``not_null`` or ``{not_null: {...}}``."""
    if isinstance(entry, str):
        return entry, {}
    if not isinstance(entry, dict) or len(entry) != 1:
        raise PropertiesError(f"{where}: a generic test is its name or a mapping of one key (its name), got {entry!r}")
    kind, body = next(iter(entry.items()))
    return kind, _mapping(f"{where}.{kind}", body or {}, {"arguments", "config"})


def _severity(where: str, body: dict) -> str:
    config = _mapping(f"{where}.config", body.get("config") or {}, {"severity"})
    severity = config.get("severity", "error")
    if severity not in SEVERITIES:
        raise PropertiesError(f"{where}.config.severity: {severity!r} is not one of {SEVERITIES}")
    return severity


def _column_test(where: str, column: str, entry, project: Project) -> TestSpec:
    kind, body = _test_entry(where, entry)
    if kind not in COLUMN_TESTS:
        raise PropertiesError(f"{where}: unknown column test {kind!r} (known: {sorted(COLUMN_TESTS)})")
    wanted = COLUMN_TESTS[kind]
    args = dict(_mapping(f"{where}.{kind}.arguments", body.get("arguments") or {}, wanted, wanted))
    if kind == "accepted_values":
        args["values"] = _list(f"{where}.{kind}.arguments.values", args["values"])
    if kind == "relationships":
        args["to"] = relation_target(f"{where}.{kind}.arguments.to", args["to"], project)
        _text(f"{where}.{kind}.arguments.field", args["field"])
    return TestSpec(f"{column}_{kind}", kind, _severity(f"{where}.{kind}", body), column=column, arguments=args)


def _model_test(where: str, entry, columns: dict) -> TestSpec:
    if isinstance(entry, dict) and "name" in entry:  # a singular test: its own SQL
        entry = _mapping(where, entry, {"name", "description", "config", "sql"}, {"name", "sql"})
        return TestSpec(
            _text(f"{where}.name", entry["name"]),
            "singular",
            _severity(where, entry),
            description=(entry.get("description") or "").strip(),
            sql=_text(f"{where}.sql", entry["sql"]),
        )
    kind, body = _test_entry(where, entry)
    if kind != UNIQUE_COMBINATION:
        raise PropertiesError(
            f"{where}: unknown model test {kind!r} (known: {UNIQUE_COMBINATION}, or a named test with its sql)"
        )
    args = _mapping(
        f"{where}.arguments", body.get("arguments") or {}, {"combination_of_columns"}, {"combination_of_columns"}
    )
    cols = _names(f"{where}.arguments.combination_of_columns", args["combination_of_columns"])
    unknown = [c for c in cols if c not in columns]
    if unknown:
        raise PropertiesError(f"{where}: {unknown} are not columns of the model")
    return TestSpec(
        f"unique_{'_'.join(cols)}", "unique_combination", _severity(where, body), arguments={"columns": cols}
    )


def _config(where: str, config, project: Project) -> dict:
    config = _mapping(
        where,
        config,
        {"materialized", "incremental_strategy", "partition_by", "unique_key", "group", "meta"},
        {"materialized", "group"},
    )
    materialized = config["materialized"]
    if materialized not in ("table", "incremental"):
        raise PropertiesError(f"{where}.materialized: {materialized!r} is not table or incremental")
    group = config["group"]
    if group not in project.groups:
        raise PropertiesError(f"{where}.group: {group!r} is not declared in {project.root / GROUPS_FILE}")
    meta = _mapping(f"{where}.meta", config.get("meta") or {}, {"changed_keys", "delta_partition_by", "dagster"})
    dagster = _mapping(f"{where}.meta.dagster", meta.get("dagster") or {}, {"kinds", "owners"})
    changed = _mapping(
        f"{where}.meta.changed_keys", meta.get("changed_keys") or {}, set(meta.get("changed_keys") or {})
    )
    changed_keys = {t: _names(f"{where}.meta.changed_keys.{t}", keys) for t, keys in changed.items()}
    partition = None
    if "partition_by" in config:
        p = _mapping(
            f"{where}.partition_by",
            config["partition_by"],
            {"field", "data_type", "granularity"},
            {"field", "granularity"},
        )
        if p["granularity"] not in GRANULARITY:
            raise PropertiesError(f"{where}.partition_by.granularity: {p['granularity']!r} is not day or month")
        partition = {"kind": GRANULARITY[p["granularity"]], "column": _text(f"{where}.partition_by.field", p["field"])}
    strategy = config.get("incremental_strategy")
    unique_key = _names(f"{where}.unique_key", config["unique_key"]) if "unique_key" in config else []
    delta_partition_by = (
        _names(f"{where}.meta.delta_partition_by", meta["delta_partition_by"]) if "delta_partition_by" in meta else []
    )
    if materialized == "table" and (strategy or partition or changed_keys or unique_key or delta_partition_by):
        raise PropertiesError(
            f"{where}: materialized: table takes no incremental_strategy, partition_by, unique_key or changed_keys"
        )
    if materialized == "incremental":
        if strategy not in STRATEGIES:
            raise PropertiesError(f"{where}.incremental_strategy: {strategy!r} is not one of {STRATEGIES}")
        if (strategy == "insert_overwrite") != bool(partition) or (strategy == "insert_overwrite") == bool(
            changed_keys
        ):
            raise PropertiesError(
                f"{where}: incremental_strategy insert_overwrite goes with partition_by, changed_keys and merge with "
                "meta.changed_keys"
            )
        if (strategy == "merge") != bool(unique_key) or (delta_partition_by and strategy != "merge"):
            raise PropertiesError(f"{where}: unique_key and meta.delta_partition_by go with incremental_strategy merge")
        if strategy == "merge":
            # the scope of a run: the changed values of one key column, the first of unique_key
            scope = {tuple(keys) for keys in changed_keys.values()}
            if scope != {(unique_key[0],)}:
                raise PropertiesError(
                    f"{where}.meta.changed_keys: under merge every input names the one column {unique_key[0]!r} "
                    "(the first of unique_key): a run recomputes the rows of the changed values of it"
                )
    return {
        "materialized": materialized,
        "group": group,
        "owners": tuple(_names(f"{where}.meta.dagster.owners", dagster["owners"]))
        if "owners" in dagster
        else project.groups[group],
        "kinds": tuple(_names(f"{where}.meta.dagster.kinds", dagster["kinds"]))
        if "kinds" in dagster
        else DEFAULT_KINDS,
        "partition": partition,
        "changed_keys": changed_keys,
        "strategy": strategy,
        "unique_key": unique_key,
        "delta_partition_by": delta_partition_by,
    }


def read_model_properties(yml: Path, project: Project) -> ModelProperties:
    """The properties of the model ``yml.stem`` from its ``.yml`` (see the module doc)."""
    name = yml.stem
    models = _load(yml, "models")
    if len(models) != 1:
        raise PropertiesError(f"{yml}: models: holds exactly one model (this file's), got {len(models)}")
    where = f"{yml}: models[0]"
    spec = _mapping(
        where,
        models[0],
        {"name", "description", "config", "columns", "data_tests"},
        {"name", "description", "config", "columns"},
    )
    if spec["name"] != name:
        raise PropertiesError(f"{where}.name: {spec['name']!r} is not the model of this file ({name!r})")
    config = _config(f"{where}.config", spec["config"], project)
    columns: dict[str, str] = {}
    column_types: dict[str, str] = {}
    tests: list[TestSpec] = []
    for i, col in enumerate(_list(f"{where}.columns", spec["columns"])):
        cwhere = f"{where}.columns[{i}]"
        col = _mapping(cwhere, col, {"name", "description", "data_type", "data_tests"}, {"name", "description"})
        cname = _text(f"{cwhere}.name", col["name"])
        if cname in columns:
            raise PropertiesError(f"{cwhere}: column {cname!r} is declared twice")
        columns[cname] = _text(f"{cwhere}.description", col["description"])
        if "data_type" in col:
            column_types[cname] = _text(f"{cwhere}.data_type", col["data_type"]).upper()
        for j, entry in enumerate(_list(f"{cwhere}.data_tests", col.get("data_tests") or [])):
            tests.append(_column_test(f"{cwhere}.data_tests[{j}]", cname, entry, project))
    for j, entry in enumerate(_list(f"{where}.data_tests", spec.get("data_tests") or [])):
        tests.append(_model_test(f"{where}.data_tests[{j}]", entry, columns))
    seen: set[str] = set()
    for t in tests:
        if t.name in seen:
            raise PropertiesError(f"{yml}: two data tests are named {t.name!r}")
        seen.add(t.name)
    for table in config["changed_keys"]:
        if table not in project.models and table not in project.sources:
            raise PropertiesError(f"{where}.config.meta.changed_keys: {table!r} is neither a model nor a source")
    return ModelProperties(
        name=name,
        description=_text(f"{where}.description", spec["description"]).strip(),
        materialized=config["materialized"],
        group=config["group"],
        owners=config["owners"],
        kinds=config["kinds"],
        partition=config["partition"],
        changed_keys=config["changed_keys"],
        columns=columns,
        column_types=column_types,
        tests=tuple(tests),
        strategy=config["strategy"],
        unique_key=tuple(config["unique_key"]),
        delta_partition_by=tuple(config["delta_partition_by"]),
    )
