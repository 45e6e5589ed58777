"""The SQL models' YAML follows dbt's properties schema (dbt_like_sql/README.md), and the
engine's loader (``gopro_assets/sql_engine/properties.py``) reads exactly that: an unknown
key, an undeclared input or a malformed test fails with the file's name.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlglot
import yaml
from sqlglot import exp

from gopro_assets.sql_engine.properties import GROUPS_FILE, SOURCES_FILE, PropertiesError, model_files
from gopro_assets.sql_engine.runner import SQL_ROOT, discover, load_model

MODEL_YMLS = [p.with_suffix(".yml") for p in model_files(SQL_ROOT)]
DBT_GENERIC = {"not_null", "unique", "accepted_values", "relationships"}
PROJECT_GENERIC = {"non_negative"}  # ours; dbt_utils.accepted_range {min_value: 0} in dbt
MODEL_GENERIC = {"dbt_utils.unique_combination_of_columns"}


def _raw(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _generic(entry) -> tuple[str, dict]:
    return (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))


# -- the conventions, read from the files themselves ----------------------------------------
@pytest.mark.parametrize("yml", MODEL_YMLS, ids=lambda p: p.stem)
def test_model_yaml_uses_dbt_properties_schema(yml: Path):
    doc = _raw(yml)
    assert set(doc) == {"version", "models"} and doc["version"] == 2
    [model] = doc["models"]
    assert model["name"] == yml.stem
    assert set(model) <= {"name", "description", "config", "columns", "data_tests"}
    assert model["description"].strip() and model["columns"]
    # config: dbt's materializations; partitioning and incremental settings live here
    config = model["config"]
    assert config["materialized"] in ("table", "incremental")
    if config["materialized"] == "incremental":
        assert config["incremental_strategy"] in ("insert_overwrite", "changed_keys", "merge")
        if config["incremental_strategy"] == "insert_overwrite":
            assert set(config["partition_by"]) == {"field", "data_type", "granularity"}
        else:
            assert config["meta"]["changed_keys"]
        if config["incremental_strategy"] == "merge":  # dbt's unique_key: the key of a row
            assert config["unique_key"] and set(config["unique_key"]) <= {c["name"] for c in model["columns"]}
    assert config["group"] in {g["name"] for g in _raw(SQL_ROOT / GROUPS_FILE)["groups"]}
    for col in model["columns"]:
        assert set(col) <= {"name", "description", "data_type", "data_tests"}, col["name"]
        assert col["description"] and col["data_type"], col["name"]
        for entry in col.get("data_tests", []):
            name, body = _generic(entry)
            assert name in DBT_GENERIC | PROJECT_GENERIC, (col["name"], name)
            if name in ("accepted_values", "relationships"):  # dbt >= 1.10: under arguments:
                assert set(body) <= {"arguments", "config"} and body["arguments"], (col["name"], name)
    tests = model.get("data_tests", [])
    for entry in tests:
        if isinstance(entry, dict) and "name" in entry:  # a named (singular) test with its SQL
            assert set(entry) <= {"name", "description", "config", "sql"}
            assert entry["config"]["severity"] in ("error", "warn") and entry["sql"].strip()
        else:
            name, body = _generic(entry)
            assert name in MODEL_GENERIC and body["arguments"]["combination_of_columns"]
    assert any(t.get("data_tests") for t in model["columns"]) or tests, "a model without any data test"


@pytest.mark.parametrize("model", discover(), ids=lambda m: m.name)
def test_declared_columns_are_the_models_output_columns(model):
    tree = sqlglot.parse_one(model.sql, dialect="duckdb")
    while isinstance(tree, exp.SetOperation):  # a UNION's columns are its first branch's
        tree = tree.this
    assert tree.named_selects == list(model.columns)
    assert set(model.column_types) == set(model.columns)


def test_every_input_is_a_model_or_a_declared_source_and_every_source_is_read():
    models = {m.name: m for m in discover()}
    sources = _raw(SQL_ROOT / SOURCES_FILE)
    assert sources["version"] == 2 and [s["name"] for s in sources["sources"]] == ["lake"]
    declared = {t["name"] for s in sources["sources"] for t in s["tables"]}
    assert all(t["description"].strip() for s in sources["sources"] for t in s["tables"])
    read = {d for m in models.values() for d in m.deps}
    assert read <= set(models) | declared, read - set(models) - declared
    assert declared <= read, f"declared but read by no model: {declared - read}"
    assert not declared & set(models)


def test_config_reaches_the_engine():
    models = {m.name: m for m in discover()}
    assert models["batch_revenue"].partition is None and models["batch_revenue"].group == "finance"
    assert models["consent_daily"].partition == {"kind": "daily", "column": "snapshot_date"}
    snapshots = models["consent_snapshots"]
    assert (snapshots.partition, snapshots.strategy, snapshots.unique_key, snapshots.delta_partition_by) == (
        None,
        "merge",
        ["subscriber_id", "valid_from"],
        ["valid_to_month"],
    )
    assert snapshots.changed_keys == {"subscribers": ["subscriber_id"], "consent_events": ["subscriber_id"]}
    assert models["revenue_share_statements"].partition == {"kind": "monthly", "column": "statement_month"}
    assert models["late_revocations"].changed_keys["delivered_batches"] == ["deal_id", "batch_id"]
    assert models["revenue_share_allocations"].changed_keys == {
        "delivered_batches": ["deal_id", "batch_id"],
        "batch_revenue": ["deal_id", "batch_id"],
    }
    assert all(m.owners == ["team:data-platform"] and m.kinds == ["duckdb", "sql", "delta"] for m in models.values())
    # data_type bigint: the money columns leave DuckDB as int64 (run_model checks the cast)
    assert {"gross_cents", "pool_cents", "platform_cents"} <= set(models["batch_revenue"].int64_columns)
    tests = {t.name: t for t in models["consent_snapshots"].tests}
    assert tests["subscriber_id_relationships"].sql.endswith(
        "ANTI JOIN subscribers r ON m.subscriber_id = r.subscriber_id WHERE m.subscriber_id IS NOT NULL"
    )
    assert tests["ineligible_reason_accepted_values"].severity == "error"
    assert {t.name: t.severity for t in models["batch_revenue"].tests}["flat_fee_batch_without_deliveries"] == "warn"


# -- the loader fails loudly, naming the file ----------------------------------------------
@pytest.fixture
def project(tmp_path) -> Path:
    root = tmp_path / "dbt_like_sql"
    shutil.copytree(SQL_ROOT, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


BROKEN = [
    # (file, old text, new text, expected message)
    (
        "marts/batch_revenue.yml",
        "    data_tests:\n      - dbt_utils",
        "    tests:\n      - dbt_utils",
        r"unknown key\(s\) \['tests'\]",
    ),
    (
        "marts/batch_revenue.yml",
        "        data_type: bigint\n",
        "        int64: true\n",
        r"unknown key\(s\) \['int64'\]",
    ),
    ("marts/batch_revenue.yml", "      materialized: table", "      materialized: view", "is not table or incremental"),
    (
        "marts/batch_revenue.yml",
        "      group: finance",
        "      group: money",
        "'money' is not declared in .*groups.yml",
    ),
    (
        "marts/batch_revenue.yml",
        "data_tests: [not_null]",
        "data_tests: [is_not_null]",
        "unknown column test .is_not_null.",
    ),
    ("marts/batch_revenue.yml", "          severity: error", "          severity: fatal", "is not one of"),
    ("marts/batch_revenue.yml", "  - name: batch_revenue", "  - name: batch_revenues", "is not the model of this file"),
    ("marts/batch_revenue.yml", "version: 2", "version: 1", "version must be 2"),
    (
        "marts/consent_snapshots.yml",
        "source('lake', 'subscribers')",
        "source('lake', 'people')",
        "is not declared in .*sources.yml",
    ),
    ("marts/consent_daily.yml", "granularity: day", "granularity: week", "is not day or month"),
    # merge: every changed_keys input names the first unique_key column (the run's scope)
    (
        "marts/consent_snapshots.yml",
        "          consent_events: [subscriber_id]",
        "          consent_events: [event_id]",
        "under merge every input names the one column 'subscriber_id'",
    ),
    (
        "marts/consent_snapshots.yml",
        "      unique_key: [subscriber_id, valid_from]\n",
        "",
        "unique_key and meta.delta_partition_by go with incremental_strategy merge",
    ),
    # dbt < 1.10's form (values: directly under the test) is refused: arguments: is the rule
    (
        "marts/buyer_receivables.yml",
        "              arguments:\n                values:",
        "              values:",
        r"unknown key\(s\) \['values'\]",
    ),
    # an input that is neither a model nor a source
    (
        "marts/batch_revenue.sql",
        "FROM deal_deliveries",
        "FROM mystery_table",
        "reads \\['mystery_table'\\]: neither a model",
    ),
    (
        "marts/late_revocations.sql",
        "FROM delivered_batches__changed",
        "FROM payouts__changed",
        "reads payouts__changed",
    ),
]


@pytest.mark.parametrize(("rel", "old", "new", "message"), BROKEN, ids=[b[3][:40] for b in BROKEN])
def test_loader_refuses_what_the_schema_does_not_have(project, rel, old, new, message):
    _edit(project / rel, old, new)
    sql = (project / rel).with_suffix(".sql")
    with pytest.raises(PropertiesError, match=message) as err:
        load_model(sql)
    assert str(project) in str(err.value)  # the file (or the project) is named


def test_loader_refuses_an_undeclared_source_and_a_stale_sources_file(project):
    _edit(project / SOURCES_FILE, "      - name: payouts\n", "      - name: payments_out\n")
    with pytest.raises(PropertiesError, match=r"payout_reconciliation.yml: .*\['payouts'\]"):
        load_model(project / "marts" / "payout_reconciliation.sql")
    (project / SOURCES_FILE).unlink()
    with pytest.raises(PropertiesError, match="sources.yml: missing"):
        load_model(project / "marts" / "payout_reconciliation.sql")
