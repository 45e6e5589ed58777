"""The product as a newcomer gets it (issue 11, item 1): the wheel built from this repository,
installed into a new virtual environment without the test extras, run from a folder outside
the checkout. Builds the wheel from a copy of the tree (so nothing is written into the
checkout), installs it with pip, then runs `gopro-lake demo`, `gopro-lake materialize`,
`gopro-lake export` and `dagster dev -m gopro_assets.definitions` there and checks their
results. About two minutes, most of it pip installing the dependencies.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import free_port, graphql

pytestmark = pytest.mark.system

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("gopro_assets", "gopro_tools", "dbt_like_sql")
# Never copied into the build tree: environments, caches, data and earlier build output.
COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "venv", "data", ".dagster_home", "build", "dist", "*.egg-info", "__pycache__", "*.pyc",
    ".pytest_cache", ".hypothesis", ".ruff_cache", ".grimp_cache", ".import_linter_cache", "node_modules",
)  # fmt: skip
THROUGH = "2025-02-28"  # January and February: a closed statement month, in well under a minute
MONTH = "2025-02"
PAYOUT_HEADER = [
    "payout_reference",
    "subscriber_id",
    "email",
    "amount_usd",
    "amount_cents",
    "currency",
    "statement_month",
]
# The demo's contributors earn a few dollars a month at this size; a $1 minimum payout (a
# setting, GOPRO_MIN_PAYOUT_CENTS) makes February's payout file have rows.
MIN_PAYOUT_CENTS = "100"
NOT_DELTA_TABLES = {"clip_value_model", "payout_export"}  # a model artefact, and files in GOPRO_EXPORTS
SERVER_TIMEOUT_S = 150


def _tail(text: str | bytes | None, n: int = 4000) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return (text or "")[-n:]


def run(cmd: list[str], *, timeout: float, **kw) -> subprocess.CompletedProcess:
    """Run a command; on failure, fail the test with its exit code and the tail of its output."""
    started = time.monotonic()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"timed out after {timeout:.0f} s: {' '.join(cmd)}\n"
            f"--- stdout (tail) ---\n{_tail(exc.stdout)}\n--- stderr (tail) ---\n{_tail(exc.stderr)}"
        )
    if out.returncode != 0:
        pytest.fail(
            f"exit code {out.returncode} after {time.monotonic() - started:.0f} s: {' '.join(cmd)}\n"
            f"--- stdout (tail) ---\n{_tail(out.stdout)}\n--- stderr (tail) ---\n{_tail(out.stderr)}"
        )
    return out


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without anything that points back into the checkout or its venv."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GOPRO_", "DAGSTER_", "PYTHON", "AWS_"))
        and k not in ("VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV")
    }
    env.update(extra)
    return env


def checkout_asset_keys() -> set[str]:
    from gopro_assets.definitions import defs

    return {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}


def checkout_data_files() -> set[str]:
    """Every file of the shipped packages that is neither Python source nor documentation
    (a package's README.md): the code may read any of them at run time, so all must ship."""
    return {
        path.relative_to(REPO).as_posix()
        for package in PACKAGES
        for path in (REPO / package).rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc", ".md") and "__pycache__" not in path.parts
    }


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> SimpleNamespace:
    """The wheel built from a copy of the checkout, installed into a new venv (no test extras)."""
    root = tmp_path_factory.mktemp("wheel")
    src, wheels, venv = root / "src", root / "wheels", root / "venv"
    shutil.copytree(REPO, src, ignore=COPY_IGNORE)
    env = clean_env()
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(src)], timeout=600, env=env)
    (wheel,) = wheels.glob("gopro_assets-*.whl")
    run([sys.executable, "-m", "venv", str(venv)], timeout=300, env=env)
    python = venv / "bin" / "python"
    run([str(python), "-m", "pip", "install", "-q", str(wheel)], timeout=1200, env=env, cwd=root)
    site = run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], timeout=60, env=env, cwd=root
    ).stdout.strip()
    return SimpleNamespace(wheel=wheel, venv=venv, bin=venv / "bin", python=python, site=Path(site))


@pytest.fixture(scope="module")
def lakehouse(installed, tmp_path_factory) -> SimpleNamespace:
    """`gopro-lake demo` then `gopro-lake materialize` in a folder outside the checkout."""
    work = tmp_path_factory.mktemp("outside")
    assert not work.resolve().is_relative_to(REPO)
    env = clean_env(
        GOPRO_LANDING=str(work / "landing"),
        GOPRO_LAKE=str(work / "lake"),
        GOPRO_EXPORTS=str(work / "exports"),
        GOPRO_MIN_PAYOUT_CENTS=MIN_PAYOUT_CENTS,
        DAGSTER_HOME=str(work / "dagster_home"),
        DAGSTER_DISABLE_TELEMETRY="1",
        PATH=f"{installed.bin}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    cli = str(installed.bin / "gopro-lake")
    demo = run([cli, "demo", "--out", "landing", "--subscribers", "8", "--clips", "6", "--seed", "7"], timeout=600, env=env, cwd=work)  # fmt: skip
    materialize = run([cli, "materialize", "--through", THROUGH], timeout=1200, env=env, cwd=work)
    return SimpleNamespace(work=work, env=env, cli=cli, demo=demo, materialize=materialize)


def test_wheel_ships_the_sql_models_and_every_data_file(installed):
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    assert "gopro_assets/dg.toml" in names
    sql = {n for n in names if n.startswith("dbt_like_sql/") and n.endswith(".sql")}
    assert sql and any(n.startswith("dbt_like_sql/marts/") for n in sql), sorted(names)
    missing = checkout_data_files() - names
    assert not missing, f"in the checkout but not in the wheel (pyproject.toml [tool.setuptools.package-data]): {sorted(missing)}"  # fmt: skip
    # ... and installed where the code looks for them
    for rel in checkout_data_files():
        assert (installed.site / rel).is_file(), rel
    assert {p.relative_to(installed.site).as_posix() for p in (installed.site / "dbt_like_sql").glob("*/*.sql")} == {
        p.relative_to(REPO).as_posix() for p in (REPO / "dbt_like_sql").glob("*/*.sql")
    }


# Imports the code location in the new venv with an audit hook recording every file and folder
# opened or listed; prints where the packages came from and anything read under the checkout.
PROBE = r"""
import json, os, sys
checkout = os.path.realpath(sys.argv[1])
touched = set()

def hook(event, args):
    if event in ("open", "os.listdir", "os.scandir", "glob.glob") and args:
        path = args[0]
        if isinstance(path, (str, bytes, os.PathLike)):
            path = os.path.realpath(os.fsdecode(path))
            if path == checkout or path.startswith(checkout + os.sep):
                touched.add(path)

sys.addaudithook(hook)
import dbt_like_sql
import gopro_assets
import gopro_assets.definitions as definitions
from gopro_assets.sql_engine.runner import SQL_ROOT, discover

keys = sorted(k.to_user_string() for k in definitions.defs.resolve_asset_graph().get_all_asset_keys())
models = sorted(m.name for m in discover())
from_checkout = sorted(
    name for name, module in list(sys.modules.items())
    if os.path.realpath(getattr(module, "__file__", None) or "/").startswith(checkout + os.sep)
)
print(json.dumps({
    "gopro_assets": gopro_assets.__file__, "dbt_like_sql": dbt_like_sql.__file__, "sql_root": str(SQL_ROOT),
    "keys": keys, "models": models, "touched": sorted(touched), "modules_from_checkout": from_checkout,
    "sys_path": sys.path,
}))
"""


def test_installed_code_location_reads_nothing_from_the_checkout(installed, tmp_path):
    env = clean_env(DAGSTER_HOME=str(tmp_path), GOPRO_LAKE=str(tmp_path / "lake"), DAGSTER_DISABLE_TELEMETRY="1")
    out = run([str(installed.python), "-c", PROBE, str(REPO)], timeout=300, env=env, cwd=tmp_path)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    site = str(installed.site.resolve())
    for name in ("gopro_assets", "dbt_like_sql", "sql_root"):
        assert os.path.realpath(found[name]).startswith(site + os.sep), (name, found[name], site)
    assert not found["touched"], f"the installed package read from the checkout: {found['touched']}"
    assert not found["modules_from_checkout"], found["modules_from_checkout"]
    # "" on sys.path is the probe's own working directory, tmp_path
    assert not any(p and Path(p).resolve().is_relative_to(REPO) for p in found["sys_path"]), found["sys_path"]
    assert set(found["keys"]) == checkout_asset_keys()

    from gopro_assets.sql_engine.runner import discover

    assert found["models"] == sorted(m.name for m in discover())


def test_demo_materialize_and_export_outside_the_checkout(lakehouse):
    work, env = lakehouse.work, lakehouse.env
    assert (work / "landing" / "footage").is_dir() and any((work / "landing" / "footage").rglob("*.MP4"))
    for stage in ("[1/4]", "[2/4]", "[3/4]", "[4/4]"):
        assert f"{stage} done" in lakehouse.materialize.stdout + lakehouse.materialize.stderr, stage

    lake = work / "lake"
    for table in sorted(checkout_asset_keys() - NOT_DELTA_TABLES):
        assert (lake / table / "_delta_log").is_dir(), f"no Delta table {table} in {sorted(os.listdir(lake))}"
    assert any((lake / "_models" / "clip_value_model").iterdir())

    out = run([lakehouse.cli, "export", "--month", MONTH, "--out", "cli_exports"], timeout=600, env=env, cwd=work)
    folder = work / "cli_exports" / MONTH
    payouts = folder / f"payouts_{MONTH}.csv"
    assert payouts.is_file(), out.stdout + out.stderr
    assert payouts.stat().st_mode & 0o777 == 0o600
    with payouts.open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == PAYOUT_HEADER
    body = [dict(zip(PAYOUT_HEADER, r)) for r in rows[1:]]
    assert body, f"{payouts} has no payout rows"
    assert {r["statement_month"] for r in body} == {MONTH}
    assert all(r["payout_reference"].startswith("PO-") and "@" in r["email"] for r in body)
    assert all(int(r["amount_cents"]) >= int(MIN_PAYOUT_CENTS) for r in body)
    assert all(f"{int(r['amount_cents']) / 100:.2f}" == r["amount_usd"] for r in body)

    # the same money as the lake's statements, read with this checkout's deltalake
    from deltalake import DeltaTable

    statements = DeltaTable(str(lake / "revenue_share_statements")).to_pyarrow_table().to_pylist()
    payable = {s["subscriber_id"]: s["payable_cents"] for s in statements if s["statement_month"] == MONTH}
    assert {r["subscriber_id"]: int(r["amount_cents"]) for r in body} == {k: v for k, v in payable.items() if v > 0}

    for name in (f"finance_{MONTH}.xlsx", f"report_{MONTH}.html"):
        assert (folder / name).stat().st_size > 1000, name
    # materialize's payout_export asset wrote the same payout file into GOPRO_EXPORTS
    assert (work / "exports" / MONTH / payouts.name).read_bytes() == payouts.read_bytes()


LOCATIONS = """{ workspaceOrError { ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
ASSET_NODES = "{ assetNodes { assetKey { path } } }"
RUNS = "{ runsOrError { ... on Runs { count } } }"


def stop(server: subprocess.Popen) -> None:
    """SIGINT to the server's process group (dagster dev shuts its children down), then SIGKILL."""
    for sig, wait_s in ((signal.SIGINT, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGINT:  # the leader is gone; make sure no child outlives it
            try:
                os.killpg(server.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return


def test_dagster_dev_serves_the_installed_code_location(installed, lakehouse):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = lakehouse.work / "dagster_dev.log"
    cmd = [str(installed.bin / "dagster"), "dev", "-m", "gopro_assets.definitions", "-h", "127.0.0.1", "-p", str(port)]
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            cmd, cwd=lakehouse.work, env=lakehouse.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + SERVER_TIMEOUT_S
        entry = None
        while time.monotonic() < deadline:
            if server.poll() is not None:
                pytest.fail(f"dagster dev exited with {server.returncode}:\n{_tail(log_path.read_text())}")
            try:
                entries = graphql(base, LOCATIONS)["data"]["workspaceOrError"]["locationEntries"]
                entry = next((e for e in entries if e["name"] == "gopro_assets.definitions"), None)
            except (OSError, KeyError, TypeError, ValueError):
                entry = None
            if entry and entry["loadStatus"] == "LOADED":
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"dagster dev not ready after {SERVER_TIMEOUT_S} s:\n{_tail(log_path.read_text())}")
        loaded = entry["locationOrLoadError"] or {}
        assert loaded.get("__typename") == "RepositoryLocation", f"code location failed to load: {loaded}"

        served = {"/".join(n["assetKey"]["path"]) for n in graphql(base, ASSET_NODES)["data"]["assetNodes"]}
        assert served == checkout_asset_keys()
        assert {"footage_inventory", "revenue_share_statements", "payout_reconciliation"} <= served
        # the UI reads the same instance as the CLI: materialize's four runs are there
        assert graphql(base, RUNS)["data"]["runsOrError"]["count"] >= 4
    finally:
        stop(server)
    text = log_path.read_text(errors="replace")
    assert "Traceback" not in text, _tail(text)
