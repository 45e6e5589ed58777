"""The analysts' notebooks run top to bottom against a real lake (nbclient)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from test_pipeline import build_landing
from test_valuation import _kernel

from gopro_assets.lake.delta_store import DeltaStore
from gopro_assets.shared.partitions import START
from gopro_tools.pipeline import run_all

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> str:
    base = tmp_path_factory.mktemp("notebook_lake")
    build_landing(base / "landing")
    run_all(DeltaStore(str(base / "lake")), str(base / "landing"), START, date(2025, 2, 5), valuation=False)
    return str(base / "lake")


def test_payout_review_notebook_runs_and_reconciles(lake, tmp_path, monkeypatch):
    name, env = _kernel(tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GOPRO_LAKE", lake)
    nb = nbformat.read(ROOT / "notebooks" / "payout_review.ipynb", as_version=4)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit the notebook without outputs"
    NotebookClient(nb, timeout=300, kernel_name=name, resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    # the hand-built landing of test_pipeline: January pool 50 cents, all allocated to s1
    assert "reviewing statement month 2025-01" in text
    assert "pools $0.50  allocated $0.50  earned $0.50  imbalance 0 cents" in text
    charts = [o for o in outputs if o.output_type == "display_data" and "application/vnd.plotly.v1+json" in o.data]
    assert len(charts) == 3
