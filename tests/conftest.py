"""Shared fixtures: a lake and a landing zone on tmp_path, real MP4s encoded with PyAV,
and helpers that run the real SQL models and real Dagster materializations."""

from __future__ import annotations

import json
import socket
import urllib.request
from datetime import date
from fractions import Fraction
from pathlib import Path

import pyarrow as pa
import pytest

from gopro_assets.lake.delta_store import DeltaStore
from gopro_assets.sql_engine.materialize import materialize_model
from gopro_assets.sql_engine.runner import SQL_ROOT, load_model
from gopro_tools import media


# -- real video files: one helper for the tests and the demo (gopro_tools/media.py) ----------
def encode_mp4(
    path: Path,
    width: int = 64,
    height: int = 36,
    fps: int = 1,
    seconds: int = 2,
    codec: str = "libx264",
    shade: int = 0,
) -> Path:
    """A real MP4 of ``seconds`` at ``fps``: a flat grey picture of luma ``shade`` with a
    moving bar (cheap to encode even at 4K; different shades, different fingerprints),
    written by the demo generator's encoder."""
    return media.encode_mp4(path, width=width, height=height, fps=fps, seconds=seconds, codec=codec, shade=shade)


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
    """Run one dbt_like_sql model on DuckDB over the lake through the engine's
    ``materialize_model`` (as its asset does), and fail on any error-severity data test (as
    its blocking asset check would). A daily model takes ``range_start``/``range_end``, a
    monthly one ``month``/``month_start`` (``month_vars``). Returns the rows computed (or
    held, when an unpartitioned model is up to date)."""
    model = load_model(next(SQL_ROOT.glob(f"*/{name}.sql")))
    defaults = {
        "as_of": "2099-01-01T00:00:00+00:00",
        "share_rate_num": 1,
        "share_rate_den": 2,
        "min_payout_cents": 1000,
        "review_days": 7,
    }
    month, month_start = variables.pop("month", None), variables.pop("month_start", None)
    first, last = variables.pop("range_start", None), variables.pop("range_end", None)
    run = materialize_model(
        store,
        model,
        defaults | variables,
        days=None if first is None else (first, last),
        months=None if month is None else [month_start or f"{month}-01"],
        keep_rows=True,
    )
    failed = {t.test.name: t.sample for t in run.errors}
    assert not failed, f"{name}: failed data tests {json.dumps(failed, default=str)[:2000]}"
    return run.rows


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


# -- servers on loopback (the Dagster UI, PostgreSQL) ----------------------------------
def free_port() -> int:
    """A loopback port that is free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(base: str, query: str) -> dict:
    """One query to a Dagster webserver's GraphQL endpoint."""
    request = urllib.request.Request(
        f"{base}/graphql", data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())
