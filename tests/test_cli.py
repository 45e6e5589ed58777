"""`gopro-lake` as a user meets it (docs/CLI.md): every refusal and every error a user can
cause is one line on stderr, without a traceback, with its documented exit code (2 usage,
1 refused or failed, 3 another run in progress); the runs of `materialize` are named
jobs whose links the CLI prints; the demo's default run ends at the demo's last day."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest
from conftest import month_vars, run_sql_model, write_rows
from test_explain import BATCHES, DELIVERIES

from gopro_assets import cli, settings
from gopro_assets.domain.licensing.deliveries import DELIVERED_BATCH_SCHEMA, DELIVERY_SCHEMA
from gopro_assets.shared.automation import MATERIALIZE_JOBS

TODAY = settings.yesterday_utc() + timedelta(days=1)
THIS_MONTH, THIS_YEAR = TODAY.strftime("%Y-%m"), str(TODAY.year)


@pytest.fixture
def env(tmp_path, monkeypatch) -> Path:
    """Every setting on tmp_path (the CLI writes DAGSTER_HOME and two Dagster switches)."""
    for key, value in {
        "GOPRO_LANDING": tmp_path / "landing",
        "GOPRO_LAKE": tmp_path / "lake",
        "GOPRO_EXPORTS": tmp_path / "exports",
        "DAGSTER_HOME": tmp_path / "dagster_home",
    }.items():
        monkeypatch.setenv(key, str(value))
    monkeypatch.delenv("GOPRO_START_DATE", raising=False)
    monkeypatch.delenv("GOPRO_DEBUG", raising=False)
    monkeypatch.setenv("DAGSTER_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "1")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("not a folder\n")
    return tmp_path


def read_only_place(tmp_path: Path) -> str:
    """A folder that cannot be written: a mode 0555 folder, or (as root, whom modes do not
    stop) a new folder under /sys, where nobody may create files."""
    if os.geteuid() == 0:
        return "/sys/gopro-read-only-test"
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    return str(folder)


def assert_one_line(code: int, expected: int, err: str, fragment: str) -> None:
    assert code == expected, (code, err)
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err and err.startswith("gopro-lake"), err
    assert fragment in err, err


# -- usage errors: exit 2 --------------------------------------------------------------------------
USAGE = {
    "through_not_a_day": (["materialize", "--through", "2025-02-30"], "'2025-02-30' is not a day"),
    "through_not_a_date": (["materialize", "--through", "yesterday"], "expected YYYY-MM-DD"),
    "export_month_13": (["export", "--month", "2025-13"], "'2025-13' is not a month"),
    "explain_month_13": (["explain", "--subscriber", "s1", "--month", "2025-13"], "'2025-13' is not a month"),
    "tax_year_not_a_year": (["export", "--tax-year", "25"], "'25' is not a year"),
    "export_nothing_asked": (["export"], "give --month YYYY-MM and/or --tax-year YYYY"),
    "demo_negative_subscribers": (["demo", "--subscribers", "-3"], "'-3' is not a whole number >= 8"),
    "demo_too_few_clips": (["demo", "--clips", "5"], "'5' is not a whole number >= 6"),
    "demo_out_is_a_file": (["demo", "--out", "a_file"], "--out a_file is a file, not a folder"),
    "export_out_is_a_file": (["export", "--month", "2025-01", "--out", "a_file"], "--out a_file is a file"),
    "export_out_missing_parent": (
        ["export", "--month", "2025-01", "--out", "missing/out"],
        "the folder above it, missing, does not exist: create it first",
    ),
    "export_out_read_only": (["export", "--month", "2025-01", "--out", "{read_only}"], "cannot be written"),
    "negative_version": (
        ["explain", "--subscriber", "s1", "--month", "2025-01", "--as-of-version", "-1"],
        "'-1' is not a whole number >= 0",
    ),
    "unknown_command": (["bogus"], "invalid choice: 'bogus'"),
    "no_command": ([], "the following arguments are required"),
}


@pytest.mark.parametrize("case", USAGE)
def test_usage_errors_exit_2_with_one_line(case, env, capsys):
    args, fragment = USAGE[case]
    args = [a.replace("{read_only}", read_only_place(env)) for a in args]
    assert_one_line(cli.main(args), 2, capsys.readouterr().err, fragment)
    assert not (env / "exports").exists() and not (env / "missing").exists()  # nothing written
    if "--out" in args:
        out = Path(args[args.index("--out") + 1])
        assert not (out.exists() and out.is_dir() and list(out.iterdir())), "the write check left a file behind"


# -- refusals: exit 1 ---------------------------------------------------------------------------
REFUSALS = {
    "through_today": (["materialize", "--through", TODAY.isoformat()], "is after yesterday"),
    "through_future": (["materialize", "--through", "2030-01-01"], "2030-01-01 is after yesterday"),
    "through_before_start": (["materialize", "--through", "2024-12-31"], "is before the program's start (2025-01-01"),
    "export_month_before_start": (["export", "--month", "2024-12"], "--month 2024-12 is before the program's start"),
    "export_month_not_over": (["export", "--month", THIS_MONTH], f"--month {THIS_MONTH} is not over yet (UTC)"),
    "tax_year_before_start": (["export", "--tax-year", "2024"], "--tax-year 2024 is before the program's start"),
    "tax_year_not_over": (["export", "--tax-year", THIS_YEAR], f"--tax-year {THIS_YEAR} is not over yet"),
    "explain_month_before_start": (
        ["explain", "--subscriber", "s1", "--month", "2024-12"],
        "--month 2024-12 is before the program's start",
    ),
    "explain_month_not_over": (["explain", "--subscriber", "s1", "--month", THIS_MONTH], "is not over yet"),
    "explain_without_a_lake": (
        ["explain", "--subscriber", "s1", "--month", "2025-01"],
        "revenue_share_statements does not exist in the lake: materialize first",
    ),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_refusals_exit_1_with_one_line(case, env, capsys):
    args, fragment = REFUSALS[case]
    assert_one_line(cli.main(args), 1, capsys.readouterr().err, fragment)
    assert (
        not (env / "exports").exists()
        and not (env / "lake").exists()
        and not (env / "dagster_home" / "history").exists()
    )


def test_the_start_date_moves_the_refusals(env, capsys, monkeypatch):
    monkeypatch.setenv("GOPRO_START_DATE", "2025-03-01")
    assert_one_line(
        cli.main(["export", "--month", "2025-02"]), 1, capsys.readouterr().err, "(2025-03-01, GOPRO_START_DATE)"
    )
    assert_one_line(
        cli.main(["materialize", "--through", "2025-02-28"]),
        1,
        capsys.readouterr().err,
        "give --through between 2025-03-01",
    )


def test_demo_refuses_a_landing_zone_that_holds_data(env, capsys):
    (env / "landing" / "uploads").mkdir(parents=True)
    (env / "landing" / "uploads" / "u.jsonl").write_text("{}\n")
    assert_one_line(cli.main(["demo"]), 1, capsys.readouterr().err, "already holds landing data")


def test_an_unreadable_demo_manifest_is_refused(env, capsys):
    (env / "landing").mkdir()
    (env / "landing" / cli.DEMO_MANIFEST).write_text('{"last_day": "someday"}')
    assert_one_line(cli.main(["materialize"]), 1, capsys.readouterr().err, "delete it, or pass --through YYYY-MM-DD")


def test_another_run_in_progress_exits_3_with_one_line(env, capsys):
    from gopro_assets.shared.concurrency import DAGSTER_YAML

    home = env / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(DAGSTER_YAML)

    @dg.op
    def noop():
        pass

    @dg.job
    def a_job():
        noop()

    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.create_run_for_job(
            a_job, status=dg.DagsterRunStatus.STARTED, tags={"dagster/schedule_name": "nightly_schedule"}
        )
    assert_one_line(
        cli.main(["materialize", "--through", "2025-01-31"]), 3, capsys.readouterr().err, f"run id {run.run_id}"
    )


# -- explain: which statement is missing ---------------------------------------------------------


@pytest.fixture
def statements_lake(env, store, monkeypatch):
    """Statements of 2025-01 and 2025-02 (tests/test_explain.py's lake) and a subscribers
    table with s4, who has none."""
    write_rows(store, "deal_deliveries", DELIVERIES, DELIVERY_SCHEMA)
    write_rows(store, "delivered_batches", BATCHES, DELIVERED_BATCH_SCHEMA)
    run_sql_model(store, "batch_revenue")
    run_sql_model(store, "revenue_share_allocations")
    run_sql_model(store, "revenue_share_statements", **month_vars("2025-01"))
    run_sql_model(store, "revenue_share_statements", **month_vars("2025-02"))
    store.overwrite("subscribers", pa.table({"subscriber_id": ["s1", "s2", "s3", "s4"]}))
    monkeypatch.setenv("GOPRO_LAKE", store.root)
    return store


EXPLAIN = {
    "unknown_subscriber": ("s9", "2025-02", "unknown subscriber 's9': no such subscriber_id in the lake's subscribers"),
    "no_statement_that_month": (
        "s1",
        "2025-03",
        "subscriber 's1' has no statement for 2025-03 at revenue_share_statements version {version}; "
        "it has statements for 2025-01, 2025-02",
    ),
    "no_statement_at_all": ("s4", "2025-02", "subscriber 's4' has no statement in any month"),
}


@pytest.mark.parametrize("case", EXPLAIN)
def test_explain_tells_an_unknown_subscriber_from_a_missing_statement(case, statements_lake, capsys):
    subscriber, month, fragment = EXPLAIN[case]
    fragment = fragment.format(version=statements_lake.version("revenue_share_statements"))
    assert_one_line(
        cli.main(["explain", "--subscriber", subscriber, "--month", month]), 1, capsys.readouterr().err, fragment
    )


def test_explain_names_the_versions_it_has(statements_lake, capsys):
    code = cli.main(["explain", "--subscriber", "s1", "--month", "2025-01", "--as-of-version", "99"])
    latest = statements_lake.version("revenue_share_statements")
    assert_one_line(code, 1, capsys.readouterr().err, f"give --as-of-version between 0 and {latest}")
    assert cli.main(["explain", "--subscriber", "s1", "--month", "2025-01"]) == 0


# -- an empty month inside the range still exports ----------------------------------------------


def test_the_report_of_a_month_without_statements_says_so():
    from gopro_assets.domain.finance.report import build_report
    from gopro_assets.lake import duck

    con = duck.connect()
    con.register(
        "revenue_share_statements",
        pa.table(
            {
                "statement_month": ["2025-02"],
                "subscriber_id": ["s1"],
                "opening_balance_cents": [0],
                "earned_cents": [1500],
                "payable_cents": [1500],
                "carried_forward_cents": [0],
            }
        ),
    )
    empty, full = build_report(con, "2025-01").decode(), build_report(con, "2025-02").decode()
    con.close()
    assert '<p class="note" id="no-statements"><strong>No statements for 2025-01.</strong>' in empty
    assert 'id="no-statements"' not in full


# -- the real entry point, in a subprocess ----------------------------------------------------------


@pytest.mark.parametrize(
    "args, code, fragment",
    [
        (["demo", "--subscribers", "-3"], 2, "'-3' is not a whole number >= 8"),
        (["demo", "--out", "a_file"], 2, "is a file, not a folder"),
        (["export", "--month", "2025-13"], 2, "'2025-13' is not a month"),
        (["explain", "--subscriber", "s1", "--month", "2025-13"], 2, "'2025-13' is not a month"),
        (["materialize", "--through", "2030-01-01"], 1, "is after yesterday"),
    ],
)
def test_the_installed_command_prints_one_line_and_no_traceback(args, code, fragment, env):
    proc = subprocess.run(
        [sys.executable, "-m", "gopro_assets.cli", *args], cwd=env, capture_output=True, text=True, timeout=300
    )
    assert_one_line(proc.returncode, code, proc.stderr, fragment)


# -- runs of named jobs -----------------------------------------------------------------------


def test_materialize_stages_are_the_named_jobs_in_order():
    """Each stage the CLI plans is exactly one job of defs/operations/materialize_jobs.py,
    in the order of MATERIALIZE_JOBS, so every CLI run shows up in the UI under its job."""
    from gopro_assets.definitions import defs

    stages = cli.plan_stages(defs)
    assert len(stages) == len(MATERIALIZE_JOBS)
    for (_, keys), name in zip(stages, MATERIALIZE_JOBS):
        assert set(keys) == set(defs.resolve_job_def(name).asset_layer.selected_asset_keys), name


def test_ui_links_carry_the_full_run_id_and_the_base_url_is_configurable(monkeypatch):
    run_id = "a811fbc0-1d2e-4f5a-9b8c-7d6e5f4a3b2c"
    monkeypatch.delenv(cli.UI_URL_ENV, raising=False)
    assert cli.ui_url(run_id) == f"http://127.0.0.1:3000/runs/{run_id}"
    monkeypatch.setenv(cli.UI_URL_ENV, "https://dagster.example.com/")
    assert cli.ui_url(run_id) == f"https://dagster.example.com/runs/{run_id}"


def test_older_clis_process_tags_are_still_read():
    from gopro_assets.shared import concurrency as cc

    assert cc.cli_process({cc.PROCESS_TAG: "pid 12 on vm-1, started 1796586312.75"}) == ("vm-1", 12, 1796586312.75)
    old = {cc.HOST_TAG: "vm-1", cc.PID_TAG: "12", cc.PROCESS_STARTED_TAG: "1796586312.75"}
    assert cc.cli_process(old) == ("vm-1", 12, 1796586312.75)
    assert cc.cli_process({}) is None
    assert set(cc.session_tags()) == {cc.MATERIALIZE_TAG, cc.PROCESS_TAG}


# -- the demo, end to end ------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.system  # demo + a full materialize through July in subprocesses: about a minute
def test_the_demos_default_run_ends_at_the_demos_last_day(tmp_path):
    """`gopro-lake demo` then `gopro-lake materialize` without --through: four named runs
    through 2025-07-31, the demo's last day (not yesterday), each printed with its link."""
    from gopro_assets.lake.delta_store import DeltaStore

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GOPRO_", "DAGSTER_"))},
        "GOPRO_LANDING": str(tmp_path / "landing"),
        "GOPRO_LAKE": str(tmp_path / "lake"),
        "GOPRO_EXPORTS": str(tmp_path / "exports"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }

    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "gopro_assets.cli", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=1200,
        )

    demo = run("demo", "--subscribers", "8", "--clips", "6")
    assert demo.returncode == 0 and "Traceback" not in demo.stderr, demo.stderr
    assert "{" not in demo.stdout and "next:" in demo.stdout and "footage_quarantine" in demo.stdout, demo.stdout
    manifest = json.loads((tmp_path / "landing" / cli.DEMO_MANIFEST).read_text())
    assert manifest["last_day"] == "2025-07-31"

    mat = run("materialize")
    assert mat.returncode == 0, mat.stdout[-3000:] + mat.stderr[-3000:]
    out = mat.stdout
    assert "materializing through 2025-07-31, the demo's last day" in out
    assert len([line for line in out.splitlines() if "quarantined" in line]) == 1, out  # one line for the bad videos
    assert "on purpose" in next(line for line in out.splitlines() if "quarantined" in line)
    assert re.search(r"explain --subscriber sub-\d{4} --month 2025-0\d", out) and "dagster dev" in out, out
    links = re.findall(r"http://127\.0\.0\.1:3000/runs/([0-9a-f-]{36})\b", out)

    with dg.DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:
        runs = list(reversed(instance.get_runs()))
        assert [r.job_name for r in runs] == list(MATERIALIZE_JOBS)
        assert [r.run_id for r in runs] == links  # each printed with its full id
        assert all(r.status == dg.DagsterRunStatus.SUCCESS and r.tags["gopro/through"] == "2025-07-31" for r in runs)
        ranges = [(r.tags.get(cli.RANGE_START_TAG), r.tags.get(cli.RANGE_END_TAG)) for r in runs]
        assert ranges == [(None, None), ("2025-01-01", "2025-07-31"), (None, None), ("2025-01-01", "2025-07-01")]
    store = DeltaStore(str(tmp_path / "lake"))
    months = set(store.read("revenue_share_statements", columns=["statement_month"]).column(0).to_pylist())
    assert max(months) == "2025-07"
    days = store.read("consent_daily", columns=["snapshot_date"]).column(0).to_pylist()
    assert str(max(days))[:10] == "2025-07-31"
    assert sorted(p.name for p in (tmp_path / "exports").iterdir() if p.name[:4].isdigit())[-1] == "2025-07"
    # a month of the demo without statements exports too, and its report says so
    empty = [m for m in ("2025-01", "2025-02", "2025-03") if m not in months]
    if empty:
        export = run("export", "--month", empty[0], "--out", str(tmp_path / "again"))
        assert export.returncode == 0, export.stderr
        report = (tmp_path / "again" / empty[0] / f"report_{empty[0]}.html").read_text()
        assert f"No statements for {empty[0]}." in report
