"""Shared fixtures: a lake and a landing zone on tmp_path, real MP4s encoded with PyAV,
and helpers that run the real SQL models and real Dagster materializations."""

from __future__ import annotations

import json
from datetime import date
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pytest

from gopro_assets.lake.delta_store import DeltaStore
from gopro_assets.sql_engine.runner import SQL_ROOT, connect_for_model, load_model, run_model, run_tests


# -- real video files ----------------------------------------------------------
def encode_mp4(
    path: Path,
    width: int = 64,
    height: int = 36,
    fps: int = 1,
    seconds: int = 2,
    codec: str = "libx264",
    shade: int = 0,
) -> Path:
    """A real MP4 of ``seconds`` at ``fps`` (flat frames: cheap to encode even at 4K)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": "ultrafast"}
        frame_data = np.full((height, width, 3), shade % 256, dtype=np.uint8)
        for i in range(fps * seconds):
            frame_data[: max(1, height // 8), :, :] = (i * 7 + shade) % 256  # a little motion
            frame = av.VideoFrame.from_ndarray(frame_data, format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture
def mp4(tmp_path):
    return lambda rel, **kw: encode_mp4(tmp_path / rel, **kw)


# -- lake helpers ----------------------------------------------------------------
@pytest.fixture
def store(tmp_path) -> DeltaStore:
    return DeltaStore(str(tmp_path / "lake"))


def write_rows(store: DeltaStore, table: str, rows: list[dict], schema: pa.Schema) -> None:
    store.overwrite(table, pa.Table.from_pylist(rows, schema=schema))


def run_sql_model(store: DeltaStore, name: str, **variables) -> pa.Table:
    """Run one dbt_like_sql model on DuckDB over the lake, write it, and fail on any
    error-severity data test (as its blocking asset check would)."""
    model = load_model(next(SQL_ROOT.glob(f"*/{name}.sql")))
    defaults = {
        "as_of": "2099-01-01T00:00:00+00:00",
        "share_rate_num": 1,
        "share_rate_den": 2,
        "min_payout_cents": 1000,
        "review_days": 7,
    }
    con = connect_for_model(store, model, defaults | variables)
    result = run_model(con, model)
    column = (model.partition or {}).get("column")
    if column and "month" in variables:
        store.replace_where(name, result, f"{column} = '{variables['month']}'")
    elif column:
        store.replace_where(
            name, result, f"{column} >= '{variables['range_start']}' AND {column} <= '{variables['range_end']}'"
        )
    else:
        store.overwrite(name, result)
    failed = {t.name: rows for t, n, rows in run_tests(con, model, result) if n and t.severity == "error"}
    assert not failed, f"{name}: failed data tests {json.dumps(failed, default=str)[:2000]}"
    return result


def month_vars(month: str) -> dict:
    return {"month": month, "month_start": date.fromisoformat(f"{month}-01")}


@pytest.fixture
def frac():
    return Fraction


# -- storage backends: a real S3 server on loopback (gopro_tools/s3_server.py) ----------------
@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """SeaweedFS ``weed mini`` on loopback for the whole session, always stopped."""
    from gopro_tools.s3_server import SeaweedS3

    server = SeaweedS3(tmp_path_factory.mktemp("seaweedfs"), buckets=["gopro-test"])
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """AWS_* pointing at the loopback server (what lib.storage, deltalake and S3Resource read)."""
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    return s3_server


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def storage_root(request, tmp_path):
    """Run a test on local folders and on ``s3://gopro-test/<fresh prefix>``."""
    from gopro_tools.s3_server import StorageRoot, new_prefix

    if request.param == "local":
        return StorageRoot("local", str(tmp_path / "roots"))
    server = request.getfixturevalue("s3_env")
    return StorageRoot("s3", f"s3://{server.bucket}/{new_prefix()}", server)
