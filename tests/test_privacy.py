"""Personal data and secrets (docs/RELIABILITY.md, "Personal data and secrets").

* E-mail addresses live only in the ``subscribers`` table and in the payout CSV, which is
  written owner-only. A real Dagster run over a landing zone whose bad rows carry
  addresses leaves none anywhere else: not in any other Delta table (rows or Delta log
  statistics), not in ``quarantine_rows`` (redacted), not in any other export file, not in
  Dagster's event log.
* AWS credentials from the environment appear in no Dagster event log, no file under
  DAGSTER_HOME (run storage, compute logs) and no error text, also when S3 fails.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import zipfile
from datetime import date
from pathlib import Path
from urllib.parse import quote

import dagster as dg
import pytest
from test_pipeline import build_landing

from gopro_assets.cli import materialize
from gopro_assets.lake.delta_store import DeltaStore
from gopro_assets.lake.privacy import EMAIL_PLACEHOLDER, find_emails
from gopro_assets.lake.storage import FileRoot
from gopro_assets.shared.resources import LakehouseResource

pytestmark = pytest.mark.integration

ACCESS_KEY = "AKIADUMMYKEY1234"
SECRET_KEY = "dummysecret/xyzPRIVACYtest+0123456789abcdefABCDEF"
SECRET_FORMS = [
    ACCESS_KEY,
    SECRET_KEY,
    quote(SECRET_KEY, safe=""),
    SECRET_KEY.split("/")[1],
    base64.b64encode(SECRET_KEY.encode()).decode(),
]
AWS_ENV = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": "us-east-1"}
REPO = Path(__file__).resolve().parents[1]


def add_pii_traps(landing: Path) -> None:
    """Bad rows that carry e-mail addresses into places where they must not stay."""
    (landing / "subscribers" / "2025-02.csv").write_text(
        "subscriber_id,email,country,subscribed_at,cancelled_at,invited_at\n"
        "s5,five@example.com,US,2025-02-01T00:00:00,,\n"  # naive timestamp -> quarantined with its e-mail
        "s6,six@example.com,six@example.com,2025-02-01T00:00:00Z,,\n"  # an address in the country column
        "s7,seven@example.com\n"
    )  # wrong field count
    (landing / "consent_events" / "2025-02.jsonl").write_text(
        '{"event_id": "e9", "subscriber_id": "s1", "event_at": "2025-02-02T00:00:00Z", "action": "opt_in",'
        ' "contact": "one@example.com"}\n'  # valid; the unknown field (with an address) is dropped
        '{"event_id": "e10", "subscriber_id": "s1", "event_at": "2025-02-02", "action": "opt_in",'
        ' "contact": "one@example.com"}\n'
    )  # bad timestamp: quarantined, address redacted


def emails_in(value) -> list[str]:
    if isinstance(value, str):
        return find_emails(value)
    if isinstance(value, (list, tuple)):
        return [e for v in value for e in emails_in(v)]
    if isinstance(value, dict):
        return [e for v in value.values() for e in emails_in(v)]
    return []


def file_texts(path: Path) -> list[str]:
    """The text of a file; for a zip container (xlsx) the text of every member."""
    data = path.read_bytes()
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return [z.read(n).decode("utf-8", "replace") for n in z.namelist()]
    return [data.decode("utf-8", "replace")]


def plotly_js() -> str:
    import plotly

    return (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text("utf-8", "replace")


def event_log_texts(instance: dg.DagsterInstance) -> list[str]:
    """Every run (config, tags) and every event of every run, serialized."""
    out = []
    for run in instance.get_runs():
        out.append(dg.serialize_value(run))
        out += [dg.serialize_value(entry) for entry in instance.all_logs(run.run_id)]
    return out


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def assert_no_secret(texts: list[str], where: str) -> None:
    for text in texts:
        for form in SECRET_FORMS:
            assert form not in text, (
                f"credential leaked into {where}: ...{text[max(0, text.find(form) - 200) : text.find(form) + 50]}"
            )


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A real materialization (through 2025-03-03: January and February statements, and
    their finance exports) with dummy AWS credentials in the environment."""
    tmp = tmp_path_factory.mktemp("privacy")
    build_landing(tmp / "landing")
    add_pii_traps(tmp / "landing")
    lakehouse = LakehouseResource(
        landing=str(tmp / "landing"), lake=str(tmp / "lake"), exports=str(tmp / "exports"), min_payout_cents="0"
    )  # s1's 50 cents are payable: the payout CSV has an address
    saved = {k: os.environ.get(k) for k in AWS_ENV}
    os.environ.update(AWS_ENV)
    try:
        from gopro_assets.definitions import build_definitions

        defs = build_definitions()  # resources built while the credentials are set (the s3 resource reads them)
        home = tmp / "dagster_home"
        home.mkdir()
        with dg.instance_for_test(temp_dir=str(home)) as instance:
            ok = materialize(
                date(2025, 3, 3),
                defs=defs,
                resources={**defs.resources, "lakehouse": lakehouse},
                instance=instance,
                echo=lambda m: None,
            )
            logs = event_log_texts(instance)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert ok
    return {"tmp": tmp, "store": DeltaStore(str(tmp / "lake")), "exports": tmp / "exports", "home": home, "logs": logs}


def test_email_lives_only_in_subscribers_and_the_payout_csv(built):
    store, lake = built["store"], Path(built["store"].root)
    tables = sorted(p.name for p in lake.iterdir() if (p / "_delta_log").is_dir())
    assert {"subscribers", "quarantine_rows", "revenue_share_statements", "footage_quarantine"} <= set(tables)
    found: dict[str, set[str]] = {}
    for table in tables:
        for row in store.read(table).to_pylist():
            for column, value in row.items():
                if emails_in(value):
                    found.setdefault(table, set()).add(column)
        if table != "subscribers":  # Delta log statistics keep min/max values of string columns
            for f in files_under(lake / table / "_delta_log"):
                assert not find_emails(f.read_text("utf-8", "replace")), f
    assert found == {"subscribers": {"email"}}, found

    # the bad subscriber rows are in quarantine, with their addresses redacted
    q = [
        r
        for r in store.read("quarantine_rows").to_pylist()
        if r["source"] in ("subscribers/2025-02.csv", "consent_events/2025-02.jsonl")
    ]
    assert sorted((r["source"], r["position"]) for r in q) == [
        ("consent_events/2025-02.jsonl", 2),
        ("subscribers/2025-02.csv", 2),
        ("subscribers/2025-02.csv", 3),
        ("subscribers/2025-02.csv", 4),
    ]
    assert all(EMAIL_PLACEHOLDER in r["raw"] and "@" not in r["raw"] + r["reason"] for r in q)

    # exports: only the payout CSV holds addresses, and it is owner-only. The HTML report
    # embeds plotly.js verbatim, whose licence comments name their authors' addresses:
    # those are third-party text, not personal data of ours.
    vendor = set(find_emails(plotly_js()))
    subscribers = {
        "one@example.com",
        "two@example.com",
        "three@example.com",
        "four@example.com",
        "five@example.com",
        "six@example.com",
        "seven@example.com",
    }
    exported = files_under(built["exports"])
    assert exported, "the run should have written the finance exports"
    with_email = []
    for f in exported:
        texts = file_texts(f)
        if any(set(find_emails(t)) - vendor for t in texts):
            with_email.append(f)
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
        elif not f.name.startswith("payouts_"):
            assert not any(a in t for a in subscribers for t in texts), f
    assert with_email and all(f.name.startswith("payouts_") and f.suffix == ".csv" for f in with_email), with_email
    assert "one@example.com" in with_email[0].read_text()


def test_no_email_and_no_credential_in_the_dagster_instance(built):
    logs = built["logs"]
    assert len(logs) > 100  # the run's events really were read
    for text in logs:
        assert not find_emails(text), text[:500]
    assert_no_secret(logs, "the Dagster event log")
    for f in files_under(built["home"]):  # run storage, event log and compute log files
        data = f.read_bytes().decode("utf-8", "replace")
        assert_no_secret([data], str(f))
        assert not find_emails(data), f


def test_storage_objects_do_not_show_credentials(monkeypatch):
    for k, v in (AWS_ENV | {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}).items():
        monkeypatch.setenv(k, v)
    store, root = DeltaStore("s3://bucket/lake"), FileRoot("s3://bucket/landing")
    assert store.storage_options["AWS_SECRET_ACCESS_KEY"] == SECRET_KEY  # they are there, to be used
    assert_no_secret([repr(store), str(store), repr(root), str(root), repr(root.fs)], "a repr")
    for call in (
        lambda: store.read("subscribers"),
        lambda: root.read_bytes("subscribers/a.csv"),
        lambda: root.list("subscribers/"),
    ):
        with pytest.raises(OSError) as exc:
            call()
        import traceback

        assert_no_secret([str(exc.value), repr(exc.value), "".join(traceback.format_exception(exc.value))], "an error")


def test_a_failing_s3_run_logs_no_credential(tmp_path):
    """`gopro-lake materialize` against an S3 lake nobody answers for: the run fails with
    the storage error, and neither its output nor the Dagster instance holds the keys."""
    import socket

    build_landing(tmp_path / "landing")
    with socket.socket() as s:  # a port that was free a moment ago: connections are refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    home = tmp_path / "dagster_home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GOPRO_", "DAGSTER_"))}
    env |= AWS_ENV | {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "GOPRO_LANDING": str(tmp_path / "landing"),
        "GOPRO_LAKE": "s3://no-such-bucket/lake",
        "GOPRO_EXPORTS": str(tmp_path / "exports"),
        "DAGSTER_HOME": str(home),
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "gopro_assets.cli", "materialize", "--through", "2025-02-05"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED" in proc.stdout
    assert_no_secret([proc.stdout, proc.stderr], "the command's output")

    instance = dg.DagsterInstance.from_config(str(home))
    try:
        logs = event_log_texts(instance)
        failures = [
            e
            for r in instance.get_runs()
            for e in instance.all_logs(r.run_id)
            if e.dagster_event is not None and e.dagster_event.event_type_value == "STEP_FAILURE"
        ]
    finally:
        instance.dispose()
    assert failures, "the run should have failed on S3"
    error = json.dumps(dg.serialize_value(failures[0]))
    assert f"127.0.0.1:{port}" in error or "S3" in error, error[:2000]  # the real storage error is reported
    assert_no_secret(logs, "the Dagster event log")
    for f in files_under(home):
        assert_no_secret([f.read_bytes().decode("utf-8", "replace")], str(f))
