"""Incremental, idempotent ingestion of landing files into Delta tables (contract §2–3).

Each landing file is tracked in ``ingested_files`` by path and SHA-256 of its content.

* A file already ingested with the same hash is skipped: re-processing changes nothing.
* New files are parsed in lexical path order and MERGEd by the kind's key, keeping the
  contract's winner (first occurrence, or last for subscriber upserts) by
  (``_source_path``, ``_source_line``). Taking the min/max of positions is associative,
  so the result does not depend on the order in which files arrived.
* A file whose content changed under the same path makes that kind rebuild from all
  its files (rare: landing files are meant to be immutable; see docs/CONTRACT_CHOICES.md).

Bad rows go to ``quarantine_rows``; for crash safety, the quarantine rows of a file are
replaced (delete + append) before ``ingested_files`` records it, so a re-run after a
crash converges to the same tables.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pyarrow.compute as pc

from gopro_assets.domain.ingestion import landing
from gopro_assets.domain.ingestion import tables as decl
from gopro_assets.lake.delta_store import DeltaStore, in_list
from gopro_assets.lake.privacy import redact_quarantine_row
from gopro_assets.lake.storage import FileRoot, sha256_bytes

# Subscribers first: uploads are validated against them.
INGEST_ORDER = ["subscribers", "consent_events", "clip_exclusions", "uploads", "buyer_payments", "payouts"]
INGESTED_FILES = decl.INGESTED_FILES.name
QUARANTINE = decl.QUARANTINE_ROWS.name
INGESTED_SCHEMA = decl.INGESTED_FILES.schema


@dataclass
class IngestReport:
    kind: str
    files_seen: int = 0
    files_ingested: list[str] = field(default_factory=list)
    rows: int = 0
    quarantined: int = 0
    rebuilt: bool = False


@dataclass
class PendingFile:
    path: str
    sha256: str
    data: bytes
    size: int | None = None
    mtime_ns: int | None = None


def changed_files(store: DeltaStore, root: FileRoot, kind: str, prefix: str, suffixes: tuple[str, ...]):
    """(new or changed files in lexical order, whether any known file changed, files seen).

    A file is read and hashed unless the listing shows the size and modification time it
    had when it was recorded: then it is the file already ingested, and the nightly run
    costs a listing instead of re-reading (and hashing) every landing file of the
    history (gigabytes after a year at library scale; docs/PERFORMANCE.md). A file changed
    in place keeps neither its modification time nor, usually, its size, and is hashed as
    before; one deliberately rewritten with both restored (``touch -r``) would be missed,
    the trade-off rsync and git's index make too.
    """
    known = store.read(INGESTED_FILES, schema=INGESTED_SCHEMA, filter=pc.field("kind") == kind)
    known_hash = dict(zip(known["path"].to_pylist(), known["sha256"].to_pylist()))
    known_stat = {}
    if "mtime_ns" in known.column_names and "size_bytes" in known.column_names:  # tables before these columns
        known_stat = {
            p: (n, m)
            for p, n, m in zip(
                known["path"].to_pylist(), known["size_bytes"].to_pylist(), known["mtime_ns"].to_pylist()
            )
            if n is not None and m is not None
        }
    pending, modified = [], False
    files = root.list(prefix, suffixes)
    for info in files:
        if info.mtime_ns is not None and known_stat.get(info.rel_path) == (info.size, info.mtime_ns):
            continue
        data = root.read_bytes(info.rel_path)
        digest = sha256_bytes(data)
        if known_hash.get(info.rel_path) == digest:
            continue
        modified |= info.rel_path in known_hash
        pending.append(PendingFile(info.rel_path, digest, data, len(data), info.mtime_ns))
    vanished = set(known_hash) - {f.rel_path for f in files}
    return pending, modified or bool(vanished), files


def _winner_predicate(keep: str) -> str:
    # Contract §2: subscribers upsert (last row in file order wins); events and uploads
    # keep the first occurrence.
    op = ">" if keep == "last" else "<"
    return f"(s._source_path {op} t._source_path) OR (s._source_path = t._source_path AND s._source_line {op}= t._source_line)"


def write_quarantine(store: DeltaStore, paths: list[str], rows: list[dict]) -> None:
    """Replace the quarantine rows of ``paths`` (idempotent per file).

    E-mail addresses in ``raw`` and ``reason`` are redacted first (lake/privacy.py): e-mail
    lives only in ``subscribers`` and the payout export, never in quarantine_rows.
    """
    if paths:
        store.delete(QUARANTINE, in_list("source", paths))
    if rows:
        rows = [redact_quarantine_row(r) for r in rows]
        store.append(QUARANTINE, landing.to_arrow(rows, landing.QUARANTINE_SCHEMA))
    elif not store.exists(QUARANTINE):
        store.append(QUARANTINE, landing.QUARANTINE_SCHEMA.empty_table())


def record_ingested(store: DeltaStore, kind: str, done: list[tuple[PendingFile, int, int]], rebuild_paths=None) -> None:
    if rebuild_paths is not None:
        store.delete(INGESTED_FILES, f"kind = '{kind}'")
    rows = [
        {
            "kind": kind,
            "path": f.path,
            "sha256": f.sha256,
            "rows": n_rows,
            "quarantined": n_q,
            "size_bytes": f.size,
            "mtime_ns": f.mtime_ns,
        }
        for f, n_rows, n_q in done
    ]
    # merge_schema: a lake written before size_bytes/mtime_ns gains the two columns
    store.upsert(INGESTED_FILES, landing.to_arrow(rows, INGESTED_SCHEMA), key=["kind", "path"], merge_schema=True)


def known_subscriber_validator(store: DeltaStore):
    """Contract §3: an upload for an unknown subscriber is bad input (checked against the
    subscribers ingested so far, so subscribers are ingested first)."""
    known = set(
        store.read("subscribers", columns=["subscriber_id"], schema=landing.LANDING_KINDS["subscribers"].schema)
        .column("subscriber_id")
        .to_pylist()
    )

    def validate(rows: list[dict]) -> tuple[list[dict], list[dict]]:
        good, bad = [], []
        for r in rows:
            if r["subscriber_id"] in known:
                good.append(r)
            else:
                raw = {
                    k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items() if not k.startswith("_")
                }
                bad.append(
                    {
                        "source": r["_source_path"],
                        "position": r["_source_line"],
                        "raw": json.dumps(raw, sort_keys=True),
                        "reason": f"upload {r['clip_id']!r} names unknown subscriber {r['subscriber_id']!r}",
                    }
                )
        return good, bad

    return validate


def ingest_kind(
    store: DeltaStore,
    root: FileRoot,
    kind: landing.LandingKind,
    validate=None,
) -> IngestReport:
    """Ingest the new files of one tabular kind into the Delta table named ``kind.name``.

    ``validate(rows) -> (good_rows, quarantine_rows)`` adds checks that need other tables
    (e.g. uploads of unknown subscribers).
    """
    report = IngestReport(kind.name)
    pending, modified, files = changed_files(store, root, kind.name, kind.prefix, kind.suffixes)
    report.files_seen = len(files)
    if modified:
        # Rebuild this kind from every file: the only way to honour first/last-wins
        # exactly when a previously ingested file changed or disappeared.
        pending = [
            PendingFile(f.rel_path, sha256_bytes(d), d, len(d), f.mtime_ns)
            for f in files
            for d in [root.read_bytes(f.rel_path)]
        ]
        report.rebuilt = True
    if not pending:
        if not store.exists(kind.name):
            store.append(kind.name, kind.schema.empty_table())
        return report

    all_rows, all_q, done = [], [], []
    for f in pending:
        parsed = kind.parse(f.path, f.data)
        rows, q = parsed.rows, list(parsed.quarantine)
        if validate is not None and rows:
            rows, extra_q = validate(rows)
            q.extend(extra_q)
        all_rows.extend(rows)
        all_q.extend(q)
        done.append((f, len(rows), len(q)))

    new = landing.to_arrow(landing.dedup(all_rows, kind), kind.schema)
    if report.rebuilt:
        store.overwrite(kind.name, new)
        store.delete(QUARANTINE, f"source LIKE '{kind.prefix}%'")
    else:
        store.upsert(kind.name, new, key=list(kind.key), update_when=_winner_predicate(kind.keep))
    write_quarantine(store, [f.path for f in pending], all_q)
    record_ingested(store, kind.name, done, rebuild_paths=report.rebuilt or None)
    report.files_ingested = [f.path for f in pending]
    report.rows, report.quarantined = len(all_rows), len(all_q)
    return report


DEALS, BATCHES = decl.LICENSE_DEALS.name, decl.LICENSE_BATCHES.name


def _has_every_column(store: DeltaStore, table: str, schema) -> bool:
    """The table exists with every column of ``schema``. A deal table written by an older
    version (before the v2 deal keys) is rebuilt from the deal files even when none of them
    changed: a file quarantined then for a key it did not know is judged again."""
    dt = store.table(table)
    return dt is not None and set(schema.names) <= {f.name for f in dt.schema().to_arrow()}


def ingest_deals(store: DeltaStore, root: FileRoot) -> IngestReport:
    """Deal files (one JSON object each) into ``license_deals`` and ``license_batches``.

    Deals are few, so any new or changed deal file rebuilds both tables from every deal
    file (in lexical order; a second file with an already-defined ``deal_id`` is
    quarantined). Delivered batches are frozen elsewhere (R12), so a deal edited after
    delivery cannot change history.
    """
    report = IngestReport("deals")
    pending, modified, files = changed_files(store, root, "deals", "deals/", (".json",))
    report.files_seen = len(files)
    if not pending and not modified and _has_every_column(store, DEALS, landing.DEAL_SCHEMA):
        return report
    deals, batches, quarantine, done, seen = [], [], [], [], {}
    for info in files:
        data = root.read_bytes(info.rel_path)
        parsed = landing.parse_deal(info.rel_path, data)
        q = list(parsed.quarantine)
        if parsed.deal is not None:
            deal_id = parsed.deal["deal_id"]
            if deal_id in seen:
                q.append(
                    {
                        "source": info.rel_path,
                        "position": 0,
                        "raw": data.decode("utf-8", "replace")[:2000],
                        "reason": f"duplicate deal_id {deal_id!r}: already defined in {seen[deal_id]}",
                    }
                )
            else:
                seen[deal_id] = info.rel_path
                deals.append(parsed.deal)
                batches.extend(parsed.batches)
        quarantine.extend(q)
        done.append(
            (
                PendingFile(info.rel_path, sha256_bytes(data), b"", len(data), info.mtime_ns),
                1 if parsed.deal and not q else 0,
                len(q),
            )
        )
    store.overwrite(DEALS, landing.to_arrow(deals, landing.DEAL_SCHEMA))
    store.overwrite(BATCHES, landing.to_arrow(batches, landing.BATCH_SCHEMA))
    store.delete(QUARANTINE, "source LIKE 'deals/%'")
    write_quarantine(store, [], quarantine)
    record_ingested(store, "deals", done, rebuild_paths=True)
    report.files_ingested = [f.rel_path for f in files]
    report.rows, report.quarantined, report.rebuilt = len(deals), len(quarantine), True
    return report
