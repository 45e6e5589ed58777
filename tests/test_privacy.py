"""Personal data and secrets (docs/RELIABILITY.md, "Personal data and secrets").

* E-mail addresses live only in the ``subscribers`` table and in the payout CSV, which is
  written owner-only. A real Dagster run over a landing zone whose bad rows carry
  addresses leaves none anywhere else: not in any other Delta table (rows or Delta log
  statistics), not in ``quarantine_rows`` (redacted), not in any other export file, not in
  Dagster's event log.
* AWS credentials from the environment appear in no Dagster event log, no file under
  DAGSTER_HOME (run storage, compute logs) and no error text, also when S3 fails.
* Exact coordinates (contract R2b) are stored nowhere: the run's landing zone holds GoPro
  files with a GPS track and the container ``location`` tag (a muxed one, and the real
  MAX sample where ../shared/gopro-samples is present); no Delta table (rows or log), no
  export, no line the run printed and nothing in the Dagster instance holds any of their
  latitudes or longitudes with more than 2 decimals, nor the tag. Only the 5 km
  ``location_cell`` is kept.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
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
from gopro_assets.domain.footage.gpmf import devices, gps_samples
from gopro_assets.domain.footage.probe import telemetry_stream
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


# -- exact coordinates (R2b) ------------------------------------------------------------------------
# Where the muxed trap file says it was recorded (a public place, the Space Needle): GPS5
# samples drifting from here (gopro_tools/media.py), and the container tag a MAX writes.
TRAP = (47.62051, -122.34928)
TRAP_TAG = "+47.6205-122.3493/"
SAMPLES = REPO.parent / "shared" / "gopro-samples"


def add_location_traps(landing: Path) -> list[str]:
    """GoPro files whose telemetry and container hold exact positions, with their upload
    rows (s1, early January: they go through the whole run). Returns their object keys."""
    from gopro_tools.media import encode_mp4

    keys = ["s1/GX010201.MP4"]
    encode_mp4(
        landing / "footage" / keys[0],
        width=640,
        height=360,
        fps=1,
        seconds=6,
        shade=120,
        telemetry=True,
        gps=TRAP,
        location=TRAP_TAG,
        recorded_at="2025-01-08T08:00:00.000000Z",
    )
    if (SAMPLES / "max-heromode.mp4").is_file():  # the real thing: GPS5 fix 3 and an ISO 6709 tag
        keys.append("s2/GS010202.MP4")
        shutil.copyfile(SAMPLES / "max-heromode.mp4", landing / "footage" / keys[1])
    rows = [
        {
            "clip_id": f"c2{i}",
            "subscriber_id": key.split("/")[0],
            "object_key": key,
            "uploaded_at": "2025-01-08T09:00:00Z",
            "published": False,
            "activity": "surf",
            "mount": None,
        }
        for i, key in enumerate(keys)
    ]
    (landing / "uploads" / "2025-01-gps.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return keys


def positions_in(path: Path) -> tuple[list[tuple[float, float]], list[str]]:
    """Every GPS sample of every payload of a file's telemetry track (fixed or not), and
    its container location tag: what must never be stored."""
    import av

    with av.open(str(path)) as c:
        tag = c.metadata.get("location")
        stream = telemetry_stream(c)
        entries = [(e.pos, e.size) for e in stream.index_entries] if stream is not None else []
    data = path.read_bytes()
    points = [
        (g.lat, g.lon)
        for offset, size in entries
        if size
        for d in devices(data[offset : offset + size])
        for s in d.streams
        for g in gps_samples(s)
    ]
    return points, [tag] if tag else []


def coordinate_patterns(points: list[tuple[float, float]]) -> re.Pattern:
    """One regex for "this latitude or longitude, with 3 decimals or more", in every spelling
    a value takes in text: 47.620, 47.62051, +47.6205 (ISO 6709), 047.620 (zero-padded),
    -122.349..., 47.620999999 (a float printed long); the 3 decimals truncated or rounded.
    Also the GPMF raw form (degrees x 1e7 as an integer: 476205100). Timestamps are exempt:
    a number right after ':' is the seconds of a time (10:20:47.620Z is not a latitude)."""
    forms: set[str] = set()
    raw: set[str] = set()
    for value in {abs(v) for p in points for v in p}:
        whole = int(value)
        for thousandths in {int(value * 1000) % 1000, round(value * 1000) % 1000}:
            forms.add(rf"0*{whole}\.{thousandths:03d}\d*")
        raw.add(rf"{int(value * 1000)}\d{{4}}")
    decimal = rf"(?<![\d.:])[+-]?(?:{'|'.join(sorted(forms))})"
    scaled = rf"(?<!\d)-?(?:{'|'.join(sorted(raw))})(?!\d)"
    return re.compile(f"{decimal}|{scaled}")


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
    located = add_location_traps(tmp / "landing")
    printed: list[str] = []
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
                echo=printed.append,
            )
            logs = event_log_texts(instance)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert ok
    return {
        "tmp": tmp,
        "store": DeltaStore(str(tmp / "lake")),
        "exports": tmp / "exports",
        "home": home,
        "logs": logs,
        "printed": printed,
        "located": located,
    }


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


def test_no_exact_coordinate_anywhere(built):
    """R2b: the GPS tracks and location tags of the run's footage reach no table, export,
    printed line, Dagster event (logs, metadata) or file of the instance; only their
    precision-5 geohash cells do."""
    landing, store, lake = built["tmp"] / "landing", built["store"], Path(built["store"].root)
    points, tags = [], []
    for key in built["located"]:
        p, t = positions_in(landing / "footage" / key)
        points += p
        tags += t
    assert points and TRAP_TAG in tags  # the traps hold what they should
    pattern = coordinate_patterns(points)
    assert pattern.search(f"at {TRAP[0]:.5f}") and pattern.search(TRAP_TAG) and pattern.search("476205100")
    assert not pattern.search("2025-01-08T10:20:47.620Z") and not pattern.search(f"{TRAP[0]:.2f}")

    def leaks(texts: list[str], where: str) -> None:
        for text in texts:
            m = pattern.search(text)
            assert m is None, f"a coordinate in {where}: ...{text[max(0, m.start() - 120) : m.end() + 40]}"
            for tag in tags:
                assert tag not in text, f"the container location tag in {where}"

    # the traps went through the run: their clips have telemetry and a 5 km cell, nothing finer
    inventory = {r["object_key"]: r for r in store.read("footage_inventory").to_pylist()}
    for key in built["located"]:
        row = inventory[key]
        assert row["telemetry"] and row["has_gps"] and re.fullmatch(r"[0-9b-hjkmnp-z]{5}", row["location_cell"]), key
    tables = sorted(p.name for p in lake.iterdir() if (p / "_delta_log").is_dir())
    for table in tables:
        leaks([repr(row) for row in store.read(table).to_pylist()], f"Delta table {table}")
        leaks([f.read_text("utf-8", "replace") for f in files_under(lake / table / "_delta_log")], f"{table}'s log")
    for f in files_under(built["exports"]):
        leaks(file_texts(f), f"export {f.name}")
    leaks(built["printed"], "the run's printed lines")
    leaks(built["logs"], "the Dagster event log (log lines and metadata)")
    for f in files_under(built["home"]):
        leaks([f.read_bytes().decode("utf-8", "replace")], str(f))


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
