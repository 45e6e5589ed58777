"""The demo landing zone: contract §2 layout, determinism, deliberate bad input, real MP4s."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from gopro_assets.lib.demo import BASE_PRICE, CONTRACT_FOLDERS, generate_demo
from gopro_assets.lib.probe import probe_many

SMALL = {"subscribers": 12, "clips": 20, "seed": 7}
UTC = timezone.utc
CSV_HEADERS = {
    "subscribers": ["subscriber_id", "email", "country", "subscribed_at", "cancelled_at", "invited_at"],
    "buyer_payments": ["payment_id", "deal_id", "batch_id", "amount_cents", "received_at"],
    "payouts": ["payout_id", "subscriber_id", "statement_month", "amount_cents", "paid_at"],
}
TS_FIELDS = {"subscribed_at", "cancelled_at", "invited_at", "received_at", "paid_at", "event_at", "uploaded_at",
             "signed_at", "cutoff_at"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("demo") / "landing"
    counts = generate_demo(root, **SMALL)
    return root, counts


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


def test_other_seed_gives_other_data(tmp_path: Path) -> None:
    a = generate_demo(tmp_path / "a", subscribers=8, clips=6, seed=1)
    b = generate_demo(tmp_path / "b", subscribers=8, clips=6, seed=2)
    assert a["expected"]["footage"] != b["expected"]["footage"] or tree(tmp_path / "a") != tree(tmp_path / "b")


def test_exactly_the_contract_layout(demo: tuple[Path, dict]) -> None:
    root, counts = demo
    assert sorted(p.name for p in root.iterdir()) == sorted(CONTRACT_FOLDERS)
    suffix = {"subscribers": ".csv", "consent_events": ".jsonl", "clip_exclusions": ".jsonl", "uploads": ".jsonl",
              "deals": ".json", "buyer_payments": ".csv", "payouts": ".csv", "footage": ".MP4"}
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
    root, counts = demo
    values: list[str] = []
    for folder in ("subscribers", "buyer_payments", "payouts"):
        for path in (root / folder).glob("*.csv"):
            values += [v for r in read_csv(path) for k, v in r.items() if k in TS_FIELDS and v]
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
    assert {"GH", "GX", "DJ"} <= names
    assert all(k.split("/")[1] == "2025" for k in good_keys)


def test_deals_price_structure_and_payments(demo: tuple[Path, dict]) -> None:
    root, counts = demo
    good, bad = deals(root)
    assert bad == ["D-2025-006.json"]
    assert len(good) >= 3
    assert {d["buyer_id"] for d in good} >= {"acme-ai", "orbital-labs", "northwind-robotics"}
    assert {d["pricing"]["model"] for d in good} == {"per_minute", "flat_fee"}
    ranges = {"aerial": (350, 450), "uhd": (250, 350), "hd": (150, 250), "sd": (75, 125)}
    for d in good:
        assert set(d) <= {"deal_id", "buyer_id", "buyer_name", "signed_at", "pricing", "criteria", "batches"}
        if d["pricing"]["model"] == "per_minute":
            for tier, price in d["pricing"]["tier_prices_cents"].items():
                lo, hi = ranges[tier]
                assert lo <= price <= hi, (d["deal_id"], tier, price)
                premium = d["criteria"].get("unpublished_only") or d["criteria"].get("activities")
                assert (price > BASE_PRICE[tier]) == bool(premium)
        else:
            assert all(isinstance(b["fee_cents"], int) for b in d["batches"])
        months = {parse_ts(b["cutoff_at"]).month for b in d["batches"]}
        assert months <= {2, 3, 4, 5, 6}
    assert any(b.get("max_minutes") for d in good for b in d["batches"])
    batches = {(d["deal_id"], b["batch_id"]) for d in good for b in d["batches"]}
    payments = [r for p in sorted((root / "buyer_payments").glob("*.csv")) for r in read_csv(p)]
    paid = {(r["deal_id"], r["batch_id"]) for r in payments}
    assert paid - batches == {tuple(counts["expected"]["unknown_batch"])}
    assert tuple(counts["expected"]["unpaid"]) in batches - paid
    assert len(paid & batches) >= len(batches) // 2
    payouts = [r for p in sorted((root / "payouts").glob("*.csv")) for r in read_csv(p)]
    ids = [r["payout_id"] for r in payouts]
    assert len(ids) - len(set(ids)) == 1
    assert {r["statement_month"] for r in payouts} == {"2025-02", "2025-03", "2025-04", "2025-05"}


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
    assert {"unreadable video", "empty file", "no video stream", "zero duration", "truncated file",
            "video file missing"} <= set(expected_bad.values())
    good = list(by_key.values())
    assert any(u["mount"] == "drone" for u, _ in good)
    assert any(r.height > r.width for _, r in good)
    assert any(min(r.width, r.height) >= 2160 for _, r in good)
    assert {r.codec for _, r in good} >= {"h264", "hevc"}
    assert {round(r.fps) for _, r in good} >= {120}
    assert all(640 <= max(r.width, r.height) <= 3840 for _, r in good)
    assert all(r.duration_s > 1 for _, r in good)
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
