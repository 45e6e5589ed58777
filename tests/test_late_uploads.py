"""Late-arriving uploads (issue 14 item 4, docs/AUTOMATION.md): an upload row that lands
after its upload day was materialized is probed by the next nightly, which re-materializes
exactly that day's partition, and the clip is licensed in the next batch due; a batch
frozen before it arrived keeps its deliveries (R12).

Real parts only: MP4s encoded with PyAV, Delta tables, the real probe, Dagster runs."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest
from conftest import encode_mp4
from test_automation import defs_on, lakehouse_at, only_request, tick

from gopro_assets.cli import materialize
from gopro_assets.defs.operations import nightly as nightly_automation
from gopro_assets.domain.footage.inventory import refresh_inventory
from gopro_assets.domain.footage.late_uploads import contiguous_ranges, footage_backlog, late_upload_days
from gopro_assets.domain.footage.probe import probe_object
from gopro_assets.domain.ingestion.landing import UPLOADS_SCHEMA
from gopro_assets.lake.delta_store import DeltaStore

FIRST_DAY = date(2025, 1, 1)


def day(n: int, month: int = 1) -> date:
    return date(2025, month, n)


# -- (a) which days a nightly probes again: the pure rule ---------------------------------------
def test_late_days_are_the_materialized_days_behind_other_than_the_runs_own():
    behind = {day(3), day(5), day(9), day(20)}
    materialized = {day(3), day(5), day(7), day(9), day(10)}
    # day 7 is up to date, day 9 is the run's own, day 20 was never materialized (missing, not late)
    assert late_upload_days(behind, materialized, [day(9)]) == [day(3), day(5)]
    # a materialized day after the run's own (a nightly re-run for an old day) is late too
    assert late_upload_days({day(10)}, materialized, [day(9)]) == [day(10)]
    assert late_upload_days(set(), materialized, [day(9)]) == []
    assert late_upload_days(behind, set(), [day(9)]) == []
    # the run's whole range is its own (a ranged run probes it anyway)
    assert late_upload_days(behind, materialized, [day(3), day(4), day(5)]) == [day(9)]


def test_late_days_are_refreshed_in_runs_of_consecutive_days():
    assert contiguous_ranges([day(5), day(3), day(4), day(9), day(31), day(1, month=2)]) == [
        [day(3), day(4), day(5)],
        [day(9)],
        [day(31), day(1, month=2)],
    ]
    assert contiguous_ranges([]) == []
    assert contiguous_ranges([day(2)]) == [[day(2)]]


# -- the backlog, read from a real lake ----------------------------------------------------------
def _upload(clip_id: str, key: str, at: datetime) -> dict:
    return {
        "clip_id": clip_id,
        "subscriber_id": "s1",
        "object_key": key,
        "uploaded_at": at,
        "published": False,
        "activity": "surf",
        "mount": None,
        "_source_path": "uploads/u.jsonl",
        "_source_line": 1,
    }


def _probe_here(landing_root: str, keys: list[str], timeout_s: float = 0) -> list:
    """probe_many without worker processes (small, well-formed or missing files)."""
    return [probe_object(landing_root, k) for k in keys]


def test_footage_backlog_finds_uploads_that_arrived_after_their_day_ran(tmp_path):
    store = DeltaStore(str(tmp_path / "lake"))
    landing = tmp_path / "landing"
    encode_mp4(landing / "footage/s1/a.MP4", seconds=2, shade=10)
    encode_mp4(landing / "footage/s1/late.MP4", seconds=2, shade=90)
    jan3 = datetime(2025, 1, 3, 9, tzinfo=UTC)
    on_time = [
        _upload("c1", "s1/a.MP4", jan3),
        _upload("c2", "s1/missing.MP4", jan3 + timedelta(hours=1)),  # quarantined: probed all the same
    ]

    def set_uploads(rows: list[dict]) -> None:
        store.overwrite("uploads", pa.Table.from_pylist(rows, schema=UPLOADS_SCHEMA))

    assert footage_backlog(store, FIRST_DAY)[:2] == (frozenset(), frozenset())  # nothing ingested yet
    set_uploads(on_time)
    assert footage_backlog(store, FIRST_DAY).behind == {day(3)}  # not probed yet
    refresh_inventory(store, str(landing), [day(3)], FIRST_DAY, _probe_here)
    assert footage_backlog(store, FIRST_DAY)[:2] == (set(), {day(3)})

    # a late upload on the processed day, one on a day never processed, one dated before the first day
    late = _upload("c3", "s1/late.MP4", jan3 + timedelta(hours=2))
    set_uploads(
        [
            *on_time,
            late,
            _upload("c4", "s1/late.MP4", datetime(2025, 1, 6, 9, tzinfo=UTC)),
            _upload("c5", "s1/late.MP4", datetime(2024, 12, 30, 9, tzinfo=UTC)),
        ]
    )
    backlog = footage_backlog(store, FIRST_DAY)
    assert backlog[:2] == ({day(1), day(3), day(6)}, {day(3)})
    assert late_upload_days(backlog.behind, backlog.processed, [day(10)]) == [day(3)]
    refresh_inventory(store, str(landing), [day(3)], FIRST_DAY, _probe_here)
    assert footage_backlog(store, FIRST_DAY).behind == {day(1), day(6)}

    # an upload row gone since its day ran (its landing file rebuilt): the footage row is stale
    set_uploads([on_time[1], late])
    assert footage_backlog(store, FIRST_DAY).behind == {day(3)}
    refresh_inventory(store, str(landing), [day(3)], FIRST_DAY, _probe_here)
    assert footage_backlog(store, FIRST_DAY)[:2] == (set(), {day(3)})


def test_footage_backlog_since_a_version_compares_only_the_days_that_changed(tmp_path):
    # Jan 3 and Jan 4 probed; then a late upload for Jan 3 arrives (a new version of uploads)
    # and Jan 4's footage row goes stale behind the comparison's back (deleted by hand). Since
    # the version compared before, only Jan 3 changed in uploads, so only Jan 3 is found;
    # the whole comparison (no version, or a version VACUUM removed) finds both.
    store = DeltaStore(str(tmp_path / "lake"))
    landing = tmp_path / "landing"
    encode_mp4(landing / "footage/s1/a.MP4", seconds=2, shade=10)
    jan3, jan4 = datetime(2025, 1, 3, 9, tzinfo=UTC), datetime(2025, 1, 4, 9, tzinfo=UTC)
    rows = [_upload("c1", "s1/a.MP4", jan3), _upload("c2", "s1/a.MP4", jan4)]
    store.upsert("uploads", pa.Table.from_pylist(rows, schema=UPLOADS_SCHEMA), key=["clip_id"])
    refresh_inventory(store, str(landing), [day(3), day(4)], FIRST_DAY, _probe_here)
    checked = footage_backlog(store, FIRST_DAY)
    assert checked.behind == set() and checked.uploads_version == store.version("uploads")
    assert footage_backlog(store, FIRST_DAY, since_version=checked.uploads_version)[:2] == (set(), set())
    late = [_upload("c3", "s1/a.MP4", jan3 + timedelta(hours=3))]
    store.upsert("uploads", pa.Table.from_pylist(late, schema=UPLOADS_SCHEMA), key=["clip_id"])
    store.delete("footage_inventory", "clip_id = 'c2'")
    since = footage_backlog(store, FIRST_DAY, since_version=checked.uploads_version)
    assert since[:2] == ({day(3)}, {day(3)}) and since.uploads_version == store.version("uploads")
    assert footage_backlog(store, FIRST_DAY).behind == {day(3), day(4)}
    assert footage_backlog(store, FIRST_DAY, since_version=999).behind == {day(3), day(4)}  # no such version


# -- (b) the nightly, for real: a late upload licensed in the next batch due ---------------------
def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def _deal(deal_id: str, batch_id: str, cutoff_at: str) -> str:
    return json.dumps(
        {
            "deal_id": deal_id,
            "buyer_id": "acme-ai",
            "buyer_name": "Acme AI",
            "signed_at": "2025-01-01T00:00:00Z",
            "pricing": {"model": "per_minute", "tier_prices_cents": {"sd": 100}},
            "batches": [{"batch_id": batch_id, "cutoff_at": cutoff_at, "max_minutes": None}],
        }
    )


def _upload_line(clip_id: str, key: str, uploaded_at: str) -> str:
    row = {"clip_id": clip_id, "subscriber_id": "s1", "object_key": key, "uploaded_at": uploaded_at}
    return json.dumps(row | {"published": False, "activity": "surf", "mount": "helmet"}) + "\n"


def build_landing(root: Path) -> None:
    """s1 (US, invited, opted in on Jan 2) uploads c1 on Feb 10; deal D1's batch B1 is cut
    off on Feb 20."""
    _write(
        root,
        {
            "subscribers/2025-01.csv": "subscriber_id,email,country,subscribed_at,cancelled_at,invited_at\n"
            "s1,one@example.com,US,2024-12-01T00:00:00Z,,2024-12-15T00:00:00Z\n",
            "consent_events/2025-01.jsonl": json.dumps(
                {"event_id": "e1", "subscriber_id": "s1", "event_at": "2025-01-02T00:00:00Z", "action": "opt_in"}
            )
            + "\n",
            "uploads/2025-02.jsonl": _upload_line("c1", "s1/GH010001.MP4", "2025-02-10T08:00:00Z"),
            "deals/D1.json": _deal("D1", "B1", "2025-02-20T20:00:00Z"),
            "buyer_payments/p.csv": "payment_id,deal_id,batch_id,amount_cents,received_at\n",
            "payouts/p.csv": "payout_id,subscriber_id,statement_month,amount_cents,paid_at\n",
        },
    )
    encode_mp4(root / "footage/s1/GH010001.MP4", width=64, height=36, fps=1, seconds=12, shade=20)


def _deliveries(store: DeltaStore, deal_id: str, batch_id: str) -> list[dict]:
    rows = [
        r for r in store.read("deal_deliveries").to_pylist() if (r["deal_id"], r["batch_id"]) == (deal_id, batch_id)
    ]
    return sorted(rows, key=lambda r: r["clip_id"])


def _frozen_batch(store: DeltaStore, deal_id: str, batch_id: str) -> list[dict]:
    return [
        r for r in store.read("delivered_batches").to_pylist() if (r["deal_id"], r["batch_id"]) == (deal_id, batch_id)
    ]


def _nightly(local: dg.Definitions, instance: dg.DagsterInstance, tick_at: datetime):
    """The nightly as the daemon runs it: the schedule's tick, then its run request executed."""
    request = only_request(tick(nightly_automation.nightly_schedule, tick_at, instance))
    return local.resolve_job_def("nightly_job").execute_in_process(
        instance=instance, partition_key=request.partition_key, tags=request.tags, raise_on_error=False
    )


def _inventory_partitions(result) -> set[str]:
    return {
        e.partition
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey("footage_inventory")
    }


@pytest.mark.integration
@pytest.mark.system  # a catch-up and two real nightly runs
def test_a_late_upload_is_probed_by_the_next_nightly_and_licensed_in_the_next_batch_due(tmp_path):
    landing = tmp_path / "landing"
    build_landing(landing)
    lakehouse = lakehouse_at(tmp_path)
    local = defs_on(lakehouse)
    store = DeltaStore(lakehouse.lake)
    with dg.instance_for_test() as instance:
        # the lake through Feb 27, as `gopro-lake materialize` builds it: D1/B1 frozen with c1
        said: list[str] = []
        assert materialize(
            date(2025, 2, 27), defs=local, resources={"lakehouse": lakehouse}, instance=instance, echo=said.append
        ), "\n".join(said)
        frozen = _deliveries(store, "D1", "B1")
        frozen_batch = _frozen_batch(store, "D1", "B1")
        assert [r["clip_id"] for r in frozen] == ["c1"] and len(frozen_batch) == 1
        assert instance.get_status_by_partition(
            dg.AssetKey("footage_inventory"),
            ["2025-02-14"],
            local.resolve_assets_def("footage_inventory").partitions_def,
        ) == {"2025-02-14": dg.AssetPartitionStatus.MATERIALIZED}

        # On Feb 28 two uploads of days already materialized land: c2 of Feb 14 (a day without
        # uploads so far) and c3 of Feb 10 (c1's day, which every_probed_upload_has_one_feature_row
        # judges), with deal D2 whose batch is cut off at the end of Feb 28
        _write(
            landing,
            {
                "uploads/2025-02-late.jsonl": _upload_line("c2", "s1/GH010002.MP4", "2025-02-14T09:00:00Z")
                + _upload_line("c3", "s1/GH010003.MP4", "2025-02-10T09:00:00Z"),
                "deals/D2.json": _deal("D2", "B1", "2025-02-28T20:00:00Z"),
            },
        )
        encode_mp4(landing / "footage/s1/GH010002.MP4", width=64, height=36, fps=1, seconds=10, shade=60)
        encode_mp4(landing / "footage/s1/GH010003.MP4", width=64, height=36, fps=1, seconds=8, shade=100)

        # the nightly tick of March 1st (02:00 LA = 10:00 UTC) runs Feb 28
        result = _nightly(local, instance, datetime(2025, 3, 1, 10, 0, tzinfo=UTC))
        assert result.success
        # the blocking checks ran in the run and passed, every_probed_upload_has_one_feature_row included
        checks = {
            e.event_specific_data.check_name: e.event_specific_data.passed
            for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION"
            and e.event_specific_data.severity == dg.AssetCheckSeverity.ERROR
        }
        assert checks.get("every_probed_upload_has_one_feature_row") is True
        assert all(checks.values()), {name: passed for name, passed in checks.items() if not passed}

        # exactly the late days and the night's own day were materialized, by this run
        assert _inventory_partitions(result) == {"2025-02-10", "2025-02-14", "2025-02-28"}
        latest = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("footage_inventory"), asset_partitions=["2025-02-14"]), limit=1
        ).records[0]
        assert latest.run_id == result.run_id
        order = [(e.asset_key.to_user_string(), e.partition) for e in result.get_asset_materialization_events()]
        assert order.index(("footage_inventory", "2025-02-14")) < order.index(("deal_deliveries", None))

        # probed into their own days' partitions, and delivered in the batch due that night (R5)
        inventory = {r["clip_id"]: r for r in store.read("footage_inventory").to_pylist()}
        assert [(inventory[c]["upload_day"], inventory[c]["billable_seconds"]) for c in ("c2", "c3")] == [
            (date(2025, 2, 14), 10),
            (date(2025, 2, 10), 8),
        ]
        assert [r["clip_id"] for r in _deliveries(store, "D2", "B1")] == ["c1", "c2", "c3"]
        # D1/B1 was frozen before c2 and c3 arrived: unchanged although both predate its cutoff (R12)
        assert _deliveries(store, "D1", "B1") == frozen
        assert _frozen_batch(store, "D1", "B1") == frozen_batch
        assert not {"c2", "c3"} & {r["clip_id"] for r in store.read("late_revocations").to_pylist()}

        # the next night has nothing late: only its own day is materialized
        result = _nightly(local, instance, datetime(2025, 3, 2, 10, 0, tzinfo=UTC))
        assert result.success
        assert _inventory_partitions(result) == {"2025-03-01"}
        assert _deliveries(store, "D1", "B1") == frozen
