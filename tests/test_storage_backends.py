"""The same lakehouse on local folders and on S3 (contract §1: every root may be
``s3://bucket/prefix``). The S3 runs use a real S3 server on loopback (SeaweedFS, see
gopro_tools/s3_server.py) with enforced credentials: landing zone, lake and exports all live
in the bucket, the landing files are uploaded there first, the probe reads the MP4s
from S3 in its spawned workers, and the hand-computed cents of tests/test_pipeline.py
must come out the same."""

from __future__ import annotations

import json
from datetime import date

import dagster as dg
import pyarrow as pa
import pytest
from test_pipeline import build_landing, run
from test_pipeline import test_landing_to_statement_matches_hand_computed_cents as assert_hand_computed_cents

from gopro_assets.defs.ingestion import automation as landing_automation
from gopro_assets.defs.operations.maintenance import lake_tables
from gopro_assets.domain.footage.probe import probe_many
from gopro_assets.lake import retention
from gopro_assets.lake.delta_store import DeltaStore
from gopro_assets.lake.storage import FileRoot
from gopro_assets.shared.resources import LakehouseResource
from gopro_assets.shared.s3 import list_objects

SCHEMA = pa.schema([("k", pa.string()), ("day", pa.string()), ("v", pa.int64())])


def lakehouse_on(storage_root, tmp_path) -> LakehouseResource:
    """test_pipeline's landing zone, put where ``storage_root`` says (uploaded for S3)."""
    build_landing(tmp_path / "landing_src")
    landing = storage_root.put_tree(tmp_path / "landing_src", "landing")
    return LakehouseResource(landing=landing, lake=storage_root.uri("lake"), exports=storage_root.uri("exports"))


def snapshot(store: DeltaStore, client) -> dict:
    return {
        t: sorted(json.dumps(r, sort_keys=True, default=str) for r in store.read(t).to_pylist())
        for t in lake_tables(store.root, client)
    }


@pytest.mark.integration
@pytest.mark.system  # the whole pipeline twice (local, S3)
def test_landing_to_statements_on_each_backend(storage_root, tmp_path):
    lakehouse = lakehouse_on(storage_root, tmp_path)
    client = storage_root.server.client() if storage_root.server else None
    # Everything below runs through real Dagster, reading s3:// landing files and MP4s and
    # writing s3:// Delta tables and exports; the assertions are test_pipeline's.
    assert_hand_computed_cents(lakehouse)
    store = lakehouse.store()
    first = snapshot(store, client)
    assert {"footage_inventory", "deal_deliveries", "revenue_share_statements", "ingested_files"} <= set(first)
    versions = {t: store.version(t) for t in first}

    # Re-running on the same landing zone changes nothing, not even a Delta version.
    assert run(lakehouse, date(2025, 2, 5))
    assert snapshot(store, client) == first
    assert {t: store.version(t) for t in first} == versions

    # January is closed by 2025-02-05: its finance exports are written to the exports root.
    exported = FileRoot(lakehouse.exports).list("")
    assert exported, "no finance exports written"
    if storage_root.kind == "s3":
        assert lakehouse.lake.startswith("s3://") and lakehouse.exports.startswith("s3://")
        # The bucket really holds the Delta log and the exports (not some local fallback).
        keys = [o.rel_path for o in list_objects(client, storage_root.base)]
        assert any(k.startswith("lake/footage_inventory/_delta_log/") for k in keys)
        assert any(k.startswith("exports/") for k in keys)
        assert not (tmp_path / "lake").exists()


def test_delta_store_writes_on_each_backend(storage_root):
    store = DeltaStore(storage_root.uri("lake"))
    rows = [{"k": "a", "day": "d1", "v": 1}, {"k": "b", "day": "d1", "v": 2}, {"k": "c", "day": "d2", "v": 3}]
    assert store.replace_where(
        "t", pa.Table.from_pylist(rows, schema=SCHEMA), "day IN ('d1', 'd2')", partition_by=["day"]
    )
    # version 0 creates the table empty (no racing first writers can double rows), 1 holds them
    assert store.version("t") == 1 and store.table("t").metadata().partition_columns == ["day"]
    assert store.read("t", version=0).num_rows == 0

    # replace_where: only the matching rows are replaced, in one commit.
    d1 = pa.Table.from_pylist([{"k": "a", "day": "d1", "v": 10}], schema=SCHEMA)
    assert store.replace_where("t", d1, "day = 'd1'")
    assert sorted((r["k"], r["v"]) for r in store.read("t").to_pylist()) == [("a", 10), ("c", 3)]
    assert store.version("t") == 2

    # Unchanged content is not rewritten (the version stays), for replace_where and overwrite.
    assert not store.replace_where("t", d1, "day = 'd1'")
    assert store.version("t") == 2
    whole = store.read("t")
    assert not store.overwrite("t", whole)
    assert store.version("t") == 2

    # upsert: new keys inserted, matched rows updated only when the predicate holds.
    incoming = pa.Table.from_pylist([{"k": "a", "day": "d1", "v": 5}, {"k": "z", "day": "d3", "v": 7}], schema=SCHEMA)
    store.upsert("t", incoming, key=["k"], update_when="s.v > t.v")
    assert sorted((r["k"], r["v"]) for r in store.read("t").to_pylist()) == [("a", 10), ("c", 3), ("z", 7)]
    store.upsert("t", incoming.set_column(2, "v", pa.array([50, 7], pa.int64())), key=["k"])
    assert sorted((r["k"], r["v"]) for r in store.read("t").to_pylist()) == [("a", 50), ("c", 3), ("z", 7)]

    # Time travel and maintenance work on the backend too.
    assert store.read("t", version=2).num_rows == 2
    assert store.optimize_and_vacuum("t") is not None
    assert sorted((r["k"], r["v"]) for r in store.read("t").to_pylist()) == [("a", 50), ("c", 3), ("z", 7)]


@pytest.mark.s3
def test_probe_reads_mp4s_from_s3_in_spawned_workers(s3_env, tmp_path):
    """The probe's worker processes (spawn) get the credentials from the environment
    and read only headers and samples of each object, not the whole file."""
    from conftest import encode_mp4

    from gopro_tools.s3_server import new_prefix

    src = tmp_path / "src"
    encode_mp4(src / "footage/a/big.mp4", width=1280, height=720, fps=2, seconds=20, shade=3)
    with open(src / "footage/a/big.mp4", "ab") as f:  # + a 16 MiB `free` box: a big object, still valid MP4
        pad = 16 * 1024 * 1024
        f.write(pad.to_bytes(4, "big") + b"free" + bytes(pad - 8))
    encode_mp4(src / "footage/a/small.mp4", width=64, height=36, fps=1, seconds=3, shade=9)
    (src / "footage/a/empty.mp4").write_bytes(b"")
    root = f"s3://{s3_env.bucket}/{new_prefix()}"
    assert s3_env.upload_tree(src, root) == 3

    big, small, empty, missing = probe_many(
        root, ["a/big.mp4", "a/small.mp4", "a/empty.mp4", "a/none.mp4"], max_workers=2
    )
    assert big.ok and (big.width, big.height, round(big.duration_s)) == (1280, 720, 20), big
    assert small.ok and (small.width, small.height) == (64, 36), small
    assert big.size_bytes == (src / "footage/a/big.mp4").stat().st_size
    assert big.size_bytes > 16_000_000 and big.bytes_read < 2_000_000  # headers and samples only
    assert not empty.ok and "empty" in empty.reason
    assert not missing.ok and "missing" in missing.reason
    # The same bytes locally give the same fingerprint (R4 does not depend on the backend).
    [local_big] = probe_many(str(src), ["a/big.mp4"], max_workers=1)
    assert local_big.fingerprint == big.fingerprint


@pytest.mark.s3
def test_landing_sensor_sees_s3_keys(s3_env, tmp_path):
    """landing_sensor lists the s3:// landing zone: a run request for new files, a skip
    when nothing changed, and a new request when a file lands in the bucket."""
    from gopro_tools.s3_server import new_prefix

    build_landing(tmp_path / "landing")
    root = f"s3://{s3_env.bucket}/{new_prefix()}/landing"
    # The upload command (python -m gopro_assets.shared.s3 upload) with the code location's S3Resource.
    from gopro_assets.shared.s3 import main as s3_cli

    assert s3_cli(["upload", str(tmp_path / "landing"), root]) == 0
    lakehouse = LakehouseResource(landing=root, lake=f"{root}-lake", exports=f"{root}-exports")

    with dg.instance_for_test() as instance:

        def tick(cursor):
            with dg.build_sensor_context(instance=instance, cursor=cursor, resources={"lakehouse": lakehouse}) as ctx:
                return landing_automation.landing_sensor(ctx)

        first = tick(None)
        assert len(first.run_requests) == 1
        assert first.run_requests[0].tags["gopro/landing_files"] == "6"
        assert isinstance(tick(first.cursor), dg.SkipReason)

        client = s3_env.client()
        bucket, _, prefix = root[len("s3://") :].partition("/")
        client.put_object(
            Bucket=bucket,
            Key=f"{prefix}/payouts/2025-02.csv",
            Body=b"payout_id,subscriber_id,statement_month,amount_cents,paid_at\n",
        )
        client.put_object(Bucket=bucket, Key=f"{prefix}/footage/s9/new.MP4", Body=b"not watched")
        third = tick(first.cursor)
        assert len(third.run_requests) == 1 and third.cursor != first.cursor
        assert third.run_requests[0].tags["gopro/landing_files"] == "7"


def test_lake_maintenance_job_compacts_every_table_on_each_backend(storage_root):
    """lake_maintenance_job finds the lake's Delta tables (on S3 through the S3Resource's
    listing) and compacts them; the rows are unchanged."""
    from gopro_assets.defs.operations.maintenance import lake_maintenance_job
    from gopro_assets.shared.s3 import s3_resource_from_env

    store = DeltaStore(storage_root.uri("lake"))
    for table in ("alpha", "beta"):
        for day in ("d1", "d2", "d3"):
            store.append(table, pa.Table.from_pylist([{"k": f"{table}-{day}", "day": day, "v": 1}], schema=SCHEMA))
    before = {t: sorted(r["k"] for r in store.read(t).to_pylist()) for t in ("alpha", "beta")}
    lakehouse = LakehouseResource(
        landing=storage_root.uri("landing"), lake=storage_root.uri("lake"), exports=storage_root.uri("exports")
    )
    job = dg.Definitions(
        jobs=[lake_maintenance_job], resources={"lakehouse": lakehouse, "s3": s3_resource_from_env()}
    ).resolve_job_def(lake_maintenance_job.name)
    # delivered_batches pins alpha at version 1, its first rows (version 0 created it
    # empty), as the R12 audit check reads it back.
    store.overwrite("delivered_batches", pa.Table.from_pylist([{"input_versions": json.dumps({"alpha": 1})}]))
    result = job.execute_in_process(
        run_config={"ops": {"optimize_and_vacuum_lake": {"config": {"retention_hours": 0}}}}
    )
    assert result.success
    summary = result.output_for_node("optimize_and_vacuum_lake")
    assert set(summary) == {"alpha", "beta", "delivered_batches"}
    assert all(summary[t]["files_removed"] == 3 and summary[t]["files_added"] == 1 for t in ("alpha", "beta")), summary
    assert {t: sorted(r["k"] for r in store.read(t).to_pylist()) for t in ("alpha", "beta")} == before
    assert len(store.table("alpha").file_uris()) == 1
    # beta was vacuumed with the 0 h asked for (its first version's file is gone); alpha,
    # pinned, got the audit retention first and its window stayed 8 years (lake/retention.py).
    assert (summary["alpha"]["audited"], summary["beta"]["audited"]) == (True, False)
    assert summary["alpha"]["properties_set"] == retention.AUDIT_PROPERTIES
    assert summary["alpha"]["vacuum_retention_hours"] == retention.AUDIT_RETENTION_HOURS
    assert (summary["alpha"]["files_vacuumed"], summary["beta"]["vacuum_retention_hours"]) == (0, 0)
    assert summary["beta"]["files_vacuumed"] > 0
    assert store.read("alpha", version=1).num_rows == 1
    with pytest.raises(Exception):
        store.read("beta", version=1)
