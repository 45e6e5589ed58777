"""The production instance (deploy/dagster.yaml) for real: its storage, run queue and
concurrency sections on a real PostgreSQL started on loopback (Debian's ``postgresql``
package; scripts/test.sh installs it when missing), with `gopro-lake materialize` run
through a small date on a tiny landing zone, and the runs read back from PostgreSQL."""

from __future__ import annotations

import glob
import importlib
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from conftest import free_port

REPO = Path(__file__).resolve().parents[1]
DEPLOY_YAML = REPO / "deploy" / "dagster.yaml"
# The sections the test instance takes from deploy/dagster.yaml unchanged. The ECS run
# launcher and the S3 compute logs need AWS; they are checked against their config schema.
TESTED_SECTIONS = ("storage", "run_coordinator", "concurrency", "run_retries", "retention", "telemetry", "nux")
PG_ENV = ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB")


def pg_bin(name: str) -> str:
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    found = candidates[-1] if candidates else shutil.which(name)
    if not found:
        pytest.fail(f"PostgreSQL's {name} not found: `apt-get install -y postgresql` (scripts/test.sh does it)")
    return found


class LoopbackPostgres:
    """initdb + pg_ctl in a temp folder, TCP on 127.0.0.1 only, password auth. As root it
    runs as the ``postgres`` user (PostgreSQL refuses to run as root)."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="gopro-pg-"))  # not under pytest's 0700 tmp: postgres must reach it
        self.data = self.dir / "data"
        self.port = free_port()
        self.user, self.password, self.db = "dagster", secrets.token_hex(12), "dagster"
        self.as_user = None
        if os.geteuid() == 0:
            self.as_user = "postgres"
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)

    def _run(self, *cmd, **kw):
        if self.as_user:
            cmd = ("runuser", "-u", self.as_user, "--", *cmd)
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120, **kw)

    def start(self) -> None:
        pwfile = self.dir / "pw"
        pwfile.write_text(self.password + "\n")
        if self.as_user:
            shutil.chown(pwfile, self.as_user)
        self._run(
            pg_bin("initdb"),
            "-D",
            str(self.data),
            "-U",
            self.user,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-sync",
        )
        pwfile.unlink()
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off -c full_page_writes=off"
        try:
            self._run(
                pg_bin("pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.dir / "log"),
                "-o",
                opts,
                "-w",
                "-t",
                "60",
                "start",
            )
        except subprocess.CalledProcessError as exc:
            log = (self.dir / "log").read_text(errors="replace") if (self.dir / "log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {exc.stderr}\n{log[-2000:]}") from exc
        import psycopg2

        con = psycopg2.connect(
            host="127.0.0.1", port=self.port, user=self.user, password=self.password, dbname="postgres"
        )
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.db,))
            if not cur.fetchone():
                cur.execute(f"CREATE DATABASE {self.db}")
        con.close()

    def env(self) -> dict[str, str]:
        return {
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USERNAME": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": self.db,
        }

    def connect(self):
        import psycopg2

        return psycopg2.connect(
            host="127.0.0.1", port=self.port, user=self.user, password=self.password, dbname=self.db
        )

    def stop(self) -> None:
        if self.data.exists():
            try:
                self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres():
    server = LoopbackPostgres()
    try:
        server.start()
        yield server
    finally:
        server.stop()


def deploy_config() -> dict:
    return yaml.safe_load(DEPLOY_YAML.read_text())


def test_deploy_yaml_is_a_valid_instance_config(monkeypatch, tmp_path):
    """Every section passes Dagster's instance schema, and the ECS run launcher and S3
    compute log manager configs pass their own classes' schemas; every secret is an
    env reference."""
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config

    env = dict.fromkeys(
        (
            *PG_ENV,
            "DAGSTER_COMPUTE_LOG_BUCKET",
            "AWS_REGION",
            "DAGSTER_ECS_CLUSTER",
            "GOPRO_RUN_TASK_ROLE_ARN",
            "GOPRO_RUN_EXECUTION_ROLE_ARN",
            "DAGSTER_RUN_LOG_GROUP",
        ),
        "x",
    ) | {"DAGSTER_PG_PORT": "5432"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    shutil.copy(DEPLOY_YAML, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["telemetry"] == {"enabled": False}
    for section in ("run_launcher", "compute_logs", "run_coordinator"):
        ref = config[section]
        cls = getattr(importlib.import_module(ref["module"]), ref["class"])
        result = process_config(cls.config_type(), ref.get("config") or {})
        assert result.success, (section, [e.message for e in result.errors])
    assert config["run_launcher"]["class"] == "EcsRunLauncher"
    assert config["compute_logs"]["class"] == "S3ComputeLogManager"
    pg = config["storage"]["postgres"]["postgres_db"]
    assert all(
        isinstance(pg[k], dict) and set(pg[k]) == {"env"}
        for k in ("hostname", "port", "username", "password", "db_name")
    ), pg


@pytest.mark.system  # a real PostgreSQL and a real `gopro-lake materialize`
def test_materialize_records_runs_in_postgres(postgres, tmp_path):
    """`gopro-lake materialize` with DAGSTER_HOME on the deploy instance (PostgreSQL):
    the runs, their materializations and the schedule storage live in the database."""
    from test_automation import build_tiny_landing

    build_tiny_landing(tmp_path / "landing")
    home = tmp_path / "dagster_home"
    home.mkdir()
    config = {k: v for k, v in deploy_config().items() if k in TESTED_SECTIONS}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOPRO_", "DAGSTER_"))}
    env |= postgres.env() | {
        "DAGSTER_HOME": str(home),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "GOPRO_LANDING": str(tmp_path / "landing"),
        "GOPRO_LAKE": str(tmp_path / "lake"),
        "GOPRO_EXPORTS": str(tmp_path / "exports"),
    }
    cli = [sys.executable, "-m", "gopro_assets.cli", "materialize", "--through", "2025-02-28"]
    done = subprocess.run(cli, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert postgres.password not in done.stdout + done.stderr  # the secret is never printed

    with postgres.connect() as con, con.cursor() as cur:
        cur.execute("SELECT status, count(*) FROM runs GROUP BY status")
        by_status = dict(cur.fetchall())
        cur.execute(
            "SELECT count(DISTINCT asset_key) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'"
        )
        materialized_assets = cur.fetchone()[0]
        cur.execute(
            "SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION' AND asset_key = %s",
            ('["revenue_share_statements"]',),
        )
        statements = cur.fetchone()[0]
        cur.execute(
            "SELECT to_regclass('public.jobs'), to_regclass('public.job_ticks'), to_regclass('public.concurrency_limits')"
        )
        schedule_tables = cur.fetchone()
    assert set(by_status) == {"SUCCESS"} and by_status["SUCCESS"] >= 4, by_status
    assert materialized_assets >= 20
    assert statements >= 2  # January and February closed by 2025-02-28
    assert all(schedule_tables), schedule_tables

    # The instance API reads the same records back (what the UI and the daemon use).
    code = (
        "import dagster as dg; i = dg.DagsterInstance.get(); "
        "print(type(i.run_storage).__name__, type(i.schedule_storage).__name__, len(i.get_runs()), "
        "i.get_latest_materialization_event(dg.AssetKey('revenue_share_statements')) is not None)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    storage, schedules, runs, has_statements = out.stdout.split()[-4:]
    assert (storage, schedules) == ("PostgresRunStorage", "PostgresScheduleStorage")
    assert int(runs) == by_status["SUCCESS"] and has_statements == "True"
