"""The R4 fingerprint index (``domain/footage/fingerprint_index.py``): a lookup finds exactly the
inventory rows a scan of the whole inventory finds, whatever state the index is in, and
reads only the partitions that may hold a wanted fingerprint when the index is current.
Real Delta tables and DuckDB; the inventory rows are written the way refresh_inventory
writes them (one partition per upload day)."""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, date, datetime

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gopro_assets.domain.footage import fingerprint_index as fi
from gopro_assets.domain.footage.inventory import INVENTORY, INVENTORY_SCHEMA
from gopro_assets.lake.delta_store import DeltaStore
from gopro_assets.sql_engine.runner import connect

D1, D2, D3 = date(2025, 1, 1), date(2025, 1, 2), date(2025, 1, 3)
COLUMNS = ["clip_id", "fingerprint", "upload_day", "is_duplicate", "duplicate_of"]


def write_day(store: DeltaStore, day: date, clips: list[tuple[str, str]]) -> None:
    """Replace the inventory partition ``day`` with (clip_id, fingerprint) rows."""
    rows = [
        {
            "clip_id": c,
            "subscriber_id": "s1",
            "object_key": f"s1/{c}.mp4",
            "uploaded_at": datetime(day.year, day.month, day.day, 12, tzinfo=UTC),
            "published": False,
            "duration_s": 10.0,
            "billable_seconds": 10,
            "width": 64,
            "height": 36,
            "short_side_px": 36,
            "fps": 1.0,
            "codec": "h264",
            "bit_rate": 1000,
            "size_bytes": 1000,
            "fingerprint": fp,
            "tier": "sd",
            "is_duplicate": False,
            "duplicate_of": None,
            "upload_day": day,
        }
        for c, fp in clips
    ]
    store.replace_where(
        INVENTORY,
        pa.Table.from_pylist(rows, schema=INVENTORY_SCHEMA),
        f"upload_day = '{day}'",
        partition_by=["upload_day"],
    )


def scan(store: DeltaStore, fingerprints) -> list[dict]:
    """What R4 used to read: the whole inventory, filtered."""
    con = connect(store, [INVENTORY], {})
    con.register("wanted", pa.table({"fingerprint": pa.array(sorted(fingerprints), pa.string())}))
    t = con.sql(f"SELECT {', '.join(COLUMNS)} FROM {INVENTORY} WHERE fingerprint IN (SELECT fingerprint FROM wanted)")
    return sorted(t.to_arrow_table().to_pylist(), key=lambda r: r["clip_id"])


def lookup(store: DeltaStore, fingerprints) -> tuple[list[dict], set[date], set[date]]:
    found = fi.rows_with_fingerprints(store, list(fingerprints), COLUMNS)
    return sorted(found.rows.to_pylist(), key=lambda r: r["clip_id"]), found.read_days, found.unindexed_days


@pytest.fixture
def three_days(store):
    """fpA in D1 (a1) and D3 (a3), fpB in D2, fpC in D3."""
    write_day(store, D1, [("a1", "fp1:a"), ("x1", "fp1:x1")])
    write_day(store, D2, [("b2", "fp1:b"), ("x2", "fp1:x2")])
    write_day(store, D3, [("a3", "fp1:a"), ("c3", "fp1:c")])
    return store


def test_lookup_without_an_index_reads_every_partition(three_days):
    rows, read, unindexed = lookup(three_days, ["fp1:a", "fp1:new"])
    assert [r["clip_id"] for r in rows] == ["a1", "a3"] and rows == scan(three_days, ["fp1:a", "fp1:new"])
    assert read == unindexed == {D1, D2, D3}


def test_lookup_with_a_current_index_reads_only_the_partitions_holding_a_key(three_days):
    fi.reindex(three_days, [D1, D2, D3])
    rows, read, unindexed = lookup(three_days, ["fp1:a", "fp1:new"])
    assert [r["clip_id"] for r in rows] == ["a1", "a3"]
    assert read == {D1, D3} and unindexed == set()
    assert lookup(three_days, ["fp1:never-seen"]) == ([], set(), set())  # the nightly's usual case: nothing read


def _rewrite_partition(store):  # a re-run of D3 brings a new copy of fpB
    write_day(store, D3, [("a3", "fp1:a"), ("b3", "fp1:b")])


def _relabel(store):  # R4 relabel of a row of D2 in place (refresh_inventory's update)
    store.table(INVENTORY).update(predicate="clip_id = 'b2'", updates={"is_duplicate": "true", "duplicate_of": "'z'"})


def _index_rows_lost(store):  # the index lost D2's rows (a crash between the two writes)
    store.delete(fi.INDEX, f"upload_day = '{D2}'")


def _index_of_other_files(store):  # every token wrong, as if copied from another lake
    index = store.read(fi.INDEX)
    store.overwrite(
        fi.INDEX,
        index.set_column(
            index.schema.get_field_index("day_files"), "day_files", pa.array(["elsewhere"] * index.num_rows)
        ),
        partition_by=["upload_month"],
    )


@pytest.mark.parametrize(
    "damage, stale",
    [
        (_rewrite_partition, {D3}),
        (_relabel, {D2}),
        (_index_rows_lost, {D2}),
        (_index_of_other_files, {D1, D2, D3}),
    ],
)
def test_a_partition_the_index_does_not_describe_is_read_whole(three_days, damage, stale):
    fi.reindex(three_days, [D1, D2, D3])
    damage(three_days)
    wanted = ["fp1:b", "fp1:x1", "fp1:new"]
    rows, read, unindexed = lookup(three_days, wanted)
    assert rows == scan(three_days, wanted)
    assert unindexed == stale and stale <= read
    # reindexing those partitions makes the index current again
    fi.reindex(three_days, unindexed)
    assert lookup(three_days, wanted)[0] == rows and lookup(three_days, wanted)[2] == set()


def test_reindex_of_a_day_without_rows_drops_its_index_rows(three_days):
    fi.reindex(three_days, [D1, D2, D3])
    three_days.delete(INVENTORY, f"upload_day = '{D2}'")
    fi.reindex(three_days, [D2])
    assert set(three_days.read(fi.INDEX)["upload_day"].to_pylist()) == {D1, D3}
    assert lookup(three_days, ["fp1:b"]) == ([], set(), set())


_op = st.one_of(
    st.tuples(
        st.just("write"),
        st.sampled_from([D1, D2, D3]),
        st.lists(st.sampled_from(["fp1:a", "fp1:b", "fp1:c", "fp1:d"]), max_size=3),
    ),
    st.tuples(st.just("reindex"), st.sets(st.sampled_from([D1, D2, D3]))),
    st.tuples(st.just("drop_index_day"), st.sampled_from([D1, D2, D3])),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=st.lists(_op, min_size=1, max_size=6),
    wanted=st.sets(st.sampled_from(["fp1:a", "fp1:b", "fp1:c", "fp1:e"]), min_size=1),
)
def test_lookup_equals_a_whole_scan_after_any_writes(ops, wanted):
    tmp = tempfile.mkdtemp(prefix="fpindex-")
    try:
        store = DeltaStore(f"{tmp}/lake")
        write_day(store, D1, [("seed", "fp1:a")])
        for i, op in enumerate(ops):
            if op[0] == "write":
                write_day(store, op[1], [(f"c{i}-{j}", fp) for j, fp in enumerate(op[2])])
            elif op[0] == "reindex":
                fi.reindex(store, op[1])
            elif store.exists(fi.INDEX):
                store.delete(fi.INDEX, f"upload_day = '{op[1]}'")
        assert lookup(store, wanted)[0] == scan(store, wanted)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
