"""The demo landing zone: contract §2 layout, determinism, deliberate bad input, real MP4s."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gopro_assets.domain.footage.probe import probe_many
from gopro_tools.demo_landing import (
    BASE_PRICE,
    CONTRACT_FOLDERS,
    PRICE_JITTER,
    TIER_RANK,
    UNPUBLISHED_PREMIUM,
    activity_premium,
    generate_demo,
)

SMALL = {"subscribers": 12, "clips": 20, "seed": 7}
UTC = UTC
CSV_HEADERS = {
    "subscribers": ["subscriber_id", "email", "country", "subscribed_at", "cancelled_at", "invited_at"],
    "buyer_payments": ["payment_id", "deal_id", "batch_id", "amount_cents", "received_at"],
    "payouts": ["payout_id", "subscriber_id", "statement_month", "amount_cents", "paid_at"],
}
TS_FIELDS = {
    "subscribed_at",
    "cancelled_at",
    "invited_at",
    "received_at",
    "paid_at",
    "event_at",
    "uploaded_at",
    "signed_at",
    "cutoff_at",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("demo") / "landing"
    counts = generate_demo(root, **SMALL)
    return root, counts


@pytest.fixture(scope="module")
def demo_lake(demo: tuple[Path, dict], tmp_path_factory: pytest.TempPathFactory):
    """The money path (``pipeline.run_all``) over the demo, through its last day, once."""
    from datetime import date

    from gopro_assets.lake.delta_store import DeltaStore
    from gopro_tools.pipeline import run_all

    root, _ = demo
    store = DeltaStore(str(tmp_path_factory.mktemp("demo_lake") / "lake"))
    run_all(store, str(root), first_day=date(2025, 1, 1), through=date(2025, 7, 31), snapshots=False)
    return store


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def read_csv(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def read_jsonl(folder: Path) -> tuple[list[dict], list[str]]:
    """(parsed rows, lines that are not JSON)."""
    rows, bad = [], []
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                bad.append(line)
    return rows, bad


def parse_ts(value: str) -> datetime | None:
    """UTC instant, or None for a timestamp without offset (bad input by contract)."""
    t = datetime.fromisoformat(value)
    return t.astimezone(UTC) if t.tzinfo else None


def deals(root: Path) -> tuple[list[dict], list[str]]:
    good, bad = [], []
    for path in sorted((root / "deals").glob("*.json")):
        try:
            good.append(json.loads(path.read_text()))
        except json.JSONDecodeError:
            bad.append(path.name)
    return good, bad


def uploads(root: Path) -> list[dict]:
    return read_jsonl(root / "uploads")[0]


# -- layout and determinism --------------------------------------------------------------------


def test_same_seed_gives_byte_identical_trees(demo: tuple[Path, dict], tmp_path: Path) -> None:
    root, counts = demo
    again = generate_demo(tmp_path / "again", **SMALL)
    assert again == counts
    first, second = tree(root), tree(tmp_path / "again")
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []


def test_other_seed_gives_other_data(demo: tuple[Path, dict], tmp_path: Path) -> None:
    root, counts = demo
    other = generate_demo(tmp_path / "other", **(SMALL | {"seed": 8}))
    assert other["expected"]["footage"] != counts["expected"]["footage"] or tree(root) != tree(tmp_path / "other")


def test_exactly_the_contract_layout(demo: tuple[Path, dict]) -> None:
    root, counts = demo
    assert sorted(p.name for p in root.iterdir()) == sorted(CONTRACT_FOLDERS)
    suffix = {
        "subscribers": ".csv",
        "consent_events": ".jsonl",
        "clip_exclusions": ".jsonl",
        "uploads": ".jsonl",
        "deals": ".json",
        "buyer_payments": ".csv",
        "payouts": ".csv",
        "footage": ".MP4",
    }
    for folder in CONTRACT_FOLDERS:
        files = [p for p in (root / folder).rglob("*") if p.is_file()]
        assert files, folder
        assert {p.suffix for p in files} == {suffix[folder]}, folder
    assert counts["footage_files"] == len(list((root / "footage").rglob("*.MP4")))


def test_refuses_to_overwrite_landing_data(demo: tuple[Path, dict]) -> None:
    root, _ = demo
    with pytest.raises(FileExistsError):
        generate_demo(root, **SMALL)


# -- tabular inputs ------------------------------------------------------------------------------


def test_csv_files_have_the_contract_headers_and_sane_values(demo: tuple[Path, dict]) -> None:
    root, _ = demo
    for folder, header in CSV_HEADERS.items():
        for path in sorted((root / folder).glob("*.csv")):
            assert path.read_text().splitlines()[0].split(",") == header, path
            for row in read_csv(path):
                assert None not in row.values(), (path, row)  # right number of fields
                if "amount_cents" in row:
                    int(row["amount_cents"])
    subs = [r for p in sorted((root / "subscribers").glob("*.csv")) for r in read_csv(p)]
    countries = {r["country"] for r in subs}
    assert "US" in countries and len(countries) >= 2
    assert all(r["email"] == f"user{r['subscriber_id'][4:]}@example.com" for r in subs)
    assert any(r["invited_at"] == "" for r in subs) and any(r["invited_at"] for r in subs)
    assert any(r["cancelled_at"] for r in subs)


def test_every_timestamp_is_in_the_first_half_of_2025(demo: tuple[Path, dict]) -> None:
    """Everything happens in January-June 2025, except the settlement of June's batches
    and statements: buyer payments and payouts in early July."""
    root, counts = demo
    values: list[str] = []
    settlements: list[str] = []
    for folder in ("subscribers", "buyer_payments", "payouts"):
        for path in (root / folder).glob("*.csv"):
            found = [v for r in read_csv(path) for k, v in r.items() if k in TS_FIELDS and v]
            (values if folder == "subscribers" else settlements).extend(found)
    assert all(
        datetime(2025, 1, 1, tzinfo=UTC) <= parse_ts(v) <= datetime(2025, 7, 31, tzinfo=UTC) for v in settlements
    )
    values += [v for v in settlements if parse_ts(v) < datetime(2025, 7, 1, tzinfo=UTC)]
    for folder in ("consent_events", "clip_exclusions", "uploads"):
        values += [v for r in read_jsonl(root / folder)[0] for k, v in r.items() if k in TS_FIELDS]
    for d in deals(root)[0]:
        values += [d["signed_at"]] + [b["cutoff_at"] for b in d["batches"]]
    naive = [v for v in values if parse_ts(v) is None]
    assert naive == ["2025-06-28T09:15:00"]  # the one deliberate naive timestamp
    instants = [parse_ts(v) for v in values if parse_ts(v)]
    assert min(instants) >= datetime(2025, 1, 1, tzinfo=UTC)
    assert max(instants) <= datetime(2025, 6, 30, 23, 59, 59, tzinfo=UTC)
    assert any(not v.endswith("Z") for v in values if parse_ts(v))  # offsets other than Z occur


def test_consent_churn_and_exclusions(demo: tuple[Path, dict]) -> None:
    root, counts = demo
    events, bad = read_jsonl(root / "consent_events")
    assert len(bad) == 1  # the malformed line
    by_sub: dict[str, list[str]] = {}
    for e in events:
        by_sub.setdefault(e["subscriber_id"], []).append(e["action"])
    assert any(a[:3] == ["opt_in", "opt_out", "opt_in"] for a in by_sub.values())  # re-opt-in
    assert any(e.get("excluded_buyers") for e in events if e["action"] == "opt_in")
    assert [e["action"] for e in events if e["action"] not in ("opt_in", "opt_out")] == ["pause"]
    ids = [e["event_id"] for e in events]
    assert len(ids) - len(set(ids)) == 1  # one event delivered twice
    exclusions, bad = read_jsonl(root / "clip_exclusions")
    assert not bad
    actions = {}
    for e in exclusions:
        actions.setdefault(e["clip_id"], []).append(e["action"])
    assert any(a[:2] == ["exclude", "include"] for a in actions.values())
    clip_ids = {u["clip_id"] for u in uploads(root)}
    assert {e["clip_id"] for e in exclusions} <= clip_ids


def test_uploads_carry_the_deliberate_bad_rows(demo: tuple[Path, dict]) -> None:
    root, counts = demo
    rows, bad = read_jsonl(root / "uploads")
    assert len(bad) == 1
    subs = {r["subscriber_id"] for p in (root / "subscribers").glob("*.csv") for r in read_csv(p)}
    assert [u["subscriber_id"] for u in rows if u["subscriber_id"] not in subs] == ["sub-9999"]
    keys = [u["object_key"] for u in rows]
    assert any(".." in k.split("/") for k in keys)
    assert "/etc/passwd" in keys
    ids = [u["clip_id"] for u in rows]
    assert len(ids) - len(set(ids)) == 1  # a repeated clip_id (first occurrence wins)
    assert {u["activity"] for u in rows} <= {"surf", "ski", "bike", "dive", "skate", "hike", "drive", None}
    assert {u["mount"] for u in rows} <= {"helmet", "chest", "handheld", "drone", "board", None}
    assert {u["published"] for u in rows} == {True, False}
    good_keys = [k for k in keys if not k.startswith("/") and ".." not in k.split("/")]
    names = {k.rsplit("/", 1)[1][:2] for k in good_keys}
    assert {"GH", "GX", "GO", "GP", "DJ"} <= names  # GOPR + GP: the older GoPro chapter naming (R15)
    assert all(k.split("/")[1] == "2025" for k in good_keys)


def test_deals_price_structure_and_payments(demo: tuple[Path, dict]) -> None:
    root, counts = demo
    good, bad = deals(root)
    assert bad == ["D-2025-006.json"]
    assert len(good) >= 8
    assert {d["buyer_id"] for d in good} >= {"acme-ai", "orbital-labs", "northwind-robotics"}
    assert {d["pricing"]["model"] for d in good} == {"per_minute", "flat_fee"}
    premium_deals = 0
    for d in good:
        assert set(d) <= {"deal_id", "buyer_id", "buyer_name", "signed_at", "pricing", "criteria", "batches"}
        if d["pricing"]["model"] == "per_minute":
            prices = d["pricing"]["tier_prices_cents"]
            premium = activity_premium(d["criteria"].get("activities"))
            if d["criteria"].get("unpublished_only"):
                premium *= UNPUBLISHED_PREMIUM
            premium_deals += premium > 1
            for tier, price in prices.items():  # base x premiums x jitter, to 5 cents
                center = BASE_PRICE[tier] * premium
                assert center * (1 - PRICE_JITTER) - 3 <= price <= center * (1 + PRICE_JITTER) + 3, (d["deal_id"], tier)
                assert price % 5 == 0
            ranked = sorted(prices, key=TIER_RANK.get, reverse=True)
            assert [prices[t] for t in ranked] == sorted(prices.values(), reverse=True)  # aerial > uhd > hd > sd
            assert len(set(prices.values())) == len(prices)
        else:
            assert all(isinstance(b["fee_cents"], int) and b["fee_cents"] > 0 for b in d["batches"])
        months = {parse_ts(b["cutoff_at"]).month for b in d["batches"]}
        assert months <= {2, 3, 4, 5, 6}
    assert premium_deals >= 4  # activity-targeted and unpublished-only deals pay more
    # the premium activities (surf, ski, dive) are targeted at the highest activity premium
    assert any(set(d["criteria"].get("activities") or []) == {"surf", "ski", "dive"} for d in good)
    assert any(b.get("max_minutes") for d in good for b in d["batches"])
    batches = {(d["deal_id"], b["batch_id"]) for d in good for b in d["batches"]}
    payments = [r for p in sorted((root / "buyer_payments").glob("*.csv")) for r in read_csv(p)]
    paid = {(r["deal_id"], r["batch_id"]) for r in payments}
    expected = counts["expected"]
    assert paid - batches == {tuple(expected["unknown_batch"])}
    assert tuple(expected["unpaid"]) in batches - paid
    assert len(paid & batches) >= len(batches) // 2
    ids = [r["payment_id"] for r in payments]
    assert len(ids) - len(set(ids)) == 1 and expected["duplicate_payment_id"] in ids
    payouts = [r for p in sorted((root / "payouts").glob("*.csv")) for r in read_csv(p)]
    ids = [r["payout_id"] for r in payouts]
    assert len(ids) - len(set(ids)) == 1 and expected["duplicate_payout_id"] in ids
    assert {r["statement_month"] for r in payouts} <= {"2025-02", "2025-03", "2025-04", "2025-05", "2025-06"}
    assert (expected["nothing_payable"][0], expected["nothing_payable"][1]) in {
        (r["subscriber_id"], r["statement_month"]) for r in payouts
    }


def test_payments_and_payouts_reconcile_except_the_deliberate_mismatches(demo: tuple[Path, dict], demo_lake) -> None:
    """The payments and payouts are derived from the money path itself: running it on the
    demo gives exactly the deliberate R13 breaks, and every other batch is paid and every
    other payable statement matched. The statements both pay out and carry forward."""
    root, counts = demo
    expected = counts["expected"]
    store = demo_lake

    receivables = store.read("buyer_receivables").to_pylist()
    breaks = {(r["deal_id"], r["batch_id"]): r["status"] for r in receivables if r["status"] != "paid"}
    assert breaks == expected["receivables"]
    assert set(breaks.values()) == {"partial", "overpaid", "unpaid", "unknown_batch"}
    assert all(r["received_cents"] == r["gross_cents"] for r in receivables if r["status"] == "paid")
    assert any(r["gross_cents"] > 0 for r in receivables if r["status"] == "paid")
    dup = [
        r
        for p in sorted((root / "buyer_payments").glob("*.csv"))
        for r in read_csv(p)
        if r["payment_id"] == expected["duplicate_payment_id"]
    ]
    assert len(dup) == 2 and {(r["deal_id"], r["batch_id"]) for r in dup} <= {
        (r["deal_id"], r["batch_id"]) for r in receivables if r["status"] == "paid"
    }  # counted once

    reconciliation = store.read("payout_reconciliation").to_pylist()
    breaks = {
        (r["subscriber_id"], r["statement_month"]): r["status"] for r in reconciliation if r["status"] != "matched"
    }
    assert breaks == expected["payout_reconciliation"]
    assert sorted(breaks.values()) == ["duplicate", "overpaid", "underpaid", "unexpected", "unpaid"]
    assert any(r["status"] == "matched" and r["paid_cents"] > 0 for r in reconciliation)

    statements = store.read("revenue_share_statements").to_pylist()
    assert any(r["payable_cents"] >= 1000 for r in statements)
    assert any(r["carried_forward_cents"] > 0 for r in statements)
    payable = {(r["subscriber_id"], r["statement_month"]) for r in statements if r["payable_cents"] > 0}
    assert {k for k, v in expected["payout_reconciliation"].items() if v != "unexpected"} <= payable


def test_emails_only_in_subscribers(demo: tuple[Path, dict]) -> None:
    root, _ = demo
    for rel, data in tree(root).items():
        if not rel.startswith("subscribers/"):
            assert b"@example.com" not in data, rel


# -- footage ------------------------------------------------------------------------------------


def test_footage_probes_as_planned(demo: tuple[Path, dict]) -> None:
    root, counts = demo
    expected_bad: dict[str, str] = counts["expected"]["footage"]
    rows = {}
    for u in uploads(root):
        rows.setdefault(u["clip_id"], u)  # first occurrence wins
    safe = [u for u in rows.values() if not u["object_key"].startswith("/") and ".." not in u["object_key"].split("/")]
    results = probe_many(str(root), [u["object_key"] for u in safe])
    by_key = {}
    for u, r in zip(safe, results):
        if u["object_key"] in expected_bad:
            assert not r.ok and r.reason.startswith(expected_bad[u["object_key"]]), (u, r)
        else:
            assert r.ok, (u, r)
            by_key[u["object_key"]] = (u, r)
    assert {
        "unreadable video",
        "empty file",
        "no video stream",
        "zero duration",
        "truncated file",
        "video file missing",
    } <= set(expected_bad.values())
    good = list(by_key.values())
    assert any(u["mount"] == "drone" for u, _ in good)
    assert any(r.height > r.width for _, r in good)
    assert any(min(r.width, r.height) >= 2160 for _, r in good)
    assert {r.codec for _, r in good} >= {"h264", "hevc"}
    assert {round(r.fps) for _, r in good} >= {120}
    assert all(640 <= max(r.width, r.height) <= 3840 for _, r in good)
    assert all(1 < r.duration_s <= 601 for _, r in good)
    assert any(r.duration_s >= 20 for _, r in good)  # action-camera takes, not snippets
    assert any(r.duration_s < 5 for _, r in good)  # below most deals' min_duration_s
    # Byte-identical re-uploads: same fingerprint, later upload, different clip_id.
    pairs = counts["expected"]["duplicates"]
    assert pairs
    for original, copy in pairs:
        (uo, ro), (uc, rc) = by_key[original], by_key[copy]
        assert ro.fingerprint == rc.fingerprint and uo["clip_id"] != uc["clip_id"]
        assert parse_ts(uo["uploaded_at"]) < parse_ts(uc["uploaded_at"])
    copies = {c for _, c in pairs}
    fps = [r.fingerprint for k, (_, r) in by_key.items() if k not in copies]
    assert len(fps) == len(set(fps))  # every other clip is distinct


# -- the GoPro showcase: telemetry (R2b), aerial from telemetry (R3), recordings (R15) -----------


def test_gopro_showcase_in_the_lake(demo: tuple[Path, dict], demo_lake) -> None:
    """What the showcase recordings show once the lake is built (gopro_tools/demo_landing.py
    ``_gopro_showcase``), whatever the size and seed of the demo."""
    root, counts = demo
    gopro = counts["expected"]["gopro"]
    assert counts["showcase_clips"] == 10
    inventory = {r["object_key"]: r for r in demo_lake.read("footage_inventory").to_pylist()}
    recordings = {r["recording_id"]: r for r in demo_lake.read("footage_recordings").to_pylist()}

    def recording(keys: list[str]) -> dict:
        ids = {inventory[k]["recording_id"] for k in keys}
        assert len(ids) == 1, ids  # the chapters are one recording
        return recordings[ids.pop()]

    # three chapters, GX01/02/03, with GPS and IMU: complete
    complete = recording(gopro["complete_recording"])
    assert [inventory[k]["chapter"] for k in gopro["complete_recording"]] == [1, 2, 3]
    assert (complete["chapters"], complete["complete"]) == (3, True)
    assert complete["first_clip_id"] == inventory[gopro["complete_recording"][0]]["clip_id"]
    assert complete["billable_seconds"] == sum(inventory[k]["billable_seconds"] for k in gopro["complete_recording"])
    gps = inventory[gopro["gps_imu"]]
    assert (gps["telemetry"], gps["camera_model"], gps["has_gps"], gps["has_imu"]) == (True, "HERO11 Black", True, True)
    assert len(gps["location_cell"]) == 5 and gps["location_cell"].startswith("9m")  # near San Diego
    # the second chapter arrived two weeks later: complete by the demo's end; indoors, no fix
    late = recording(gopro["late_chapter"])
    assert (late["chapters"], late["complete"]) == (2, True)
    first, second = (inventory[k] for k in gopro["late_chapter"])
    assert (second["uploaded_at"] - first["uploaded_at"]).days == 14
    assert first["telemetry"] and not first["has_gps"] and first["location_cell"] is None
    # chapter 2 never came: incomplete
    missing = recording(gopro["missing_chapter"])
    assert (missing["chapters"], missing["complete"]) == (2, False)
    # a HERO5 on a Karma drone, GOPR + GP01, no mount: aerial from telemetry alone (R3)
    karma = recording(gopro["karma"])
    assert (karma["chapters"], karma["complete"]) == (2, True)
    for k in gopro["karma"]:
        row = inventory[k]
        assert (row["mount"], row["is_drone"], row["tier"], row["camera_model"]) == (
            None,
            True,
            "aerial",
            "HERO5 Black",
        )
    # a track that cannot be parsed: licensable, a warning (R2b)
    broken = inventory[gopro["telemetry_warning"]]
    assert broken["telemetry"] is False and broken["telemetry_warning"].startswith("telemetry track cannot be parsed")
    quarantine = {(r["object_key"], r["severity"]) for r in demo_lake.read("footage_quarantine").to_pylist()}
    assert (gopro["telemetry_warning"], "warning") in quarantine
    assert gopro["telemetry_warning"] not in counts["expected"]["footage"]  # not a broken video
    # the Karma clips were sold as aerial footage
    delivered = {(r["clip_id"], r["tier"]) for r in demo_lake.read("deal_deliveries").to_pylist()}
    assert (inventory[gopro["karma"][0]]["clip_id"], "aerial") in delivered
