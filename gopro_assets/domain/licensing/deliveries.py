"""R5–R6 and R12: choose each due batch's deliveries once, then never change them."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterator
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from gopro_assets.domain.finance.money import revenue_month
from gopro_assets.domain.licensing import tables as decl
from gopro_assets.domain.licensing.selection import select_batch
from gopro_assets.lake.delta_store import DeltaStore, sql_literal
from gopro_assets.sql_engine.runner import connect, fetch_arrow, query_text, table_refs

# Declared once (name, Arrow type, description) in domain/licensing/tables.py.
DELIVERIES, DELIVERED_BATCHES = decl.DEAL_DELIVERIES.name, decl.DELIVERED_BATCHES.name
DELIVERY_SCHEMA = decl.DEAL_DELIVERIES.schema
DELIVERED_BATCH_SCHEMA = decl.DELIVERED_BATCHES.schema

# R5 in two parts. Per cutoff, whatever the deal (R1/R1b owners, R1b clip exclusions, R4,
# uploaded by the cutoff), computed once for the batches of every deal with that cutoff:
CLIPS_AT_CUTOFF, RECORDINGS_AT_CUTOFF = "clips_eligible_at_cutoff", "recordings_at_cutoff"
CLIPS_AT_CUTOFF_SQL = query_text(CLIPS_AT_CUTOFF)
RECORDINGS_AT_CUTOFF_SQL = query_text(RECORDINGS_AT_CUTOFF)  # only for whole_recordings deals (R6, R15)
# per batch, the deal's own terms (buyer exclusions, criteria, price, once per deal) and R6 order:
LICENSABLE_SQL = query_text("licensable_clips")
# R4 over the whole inventory, an input of both per-cutoff queries computed once per inventory version
NON_ORIGINALS_SQL = query_text("non_original_clips")
NON_ORIGINALS = "non_original_clips"
_RESULTS = {NON_ORIGINALS, CLIPS_AT_CUTOFF, RECORDINGS_AT_CUTOFF}  # registered results, not lake tables
CUTOFF_INPUTS = sorted(set(table_refs(CLIPS_AT_CUTOFF_SQL) + table_refs(RECORDINGS_AT_CUTOFF_SQL)) - _RESULTS)
BATCH_INPUTS = sorted(set(table_refs(LICENSABLE_SQL)) - _RESULTS)
INPUTS = sorted(set(CUTOFF_INPUTS) | set(BATCH_INPUTS) | {"license_batches"})
INVENTORY = "footage_inventory"
# recordings_at_cutoff.sql's columns: the stand-in read by a deal without whole_recordings
RECORDINGS_AT_CUTOFF_SCHEMA = pa.schema(
    [
        ("recording_id", pa.string()),
        ("chapters", pa.int64()),
        ("complete", pa.bool_()),
        ("recording_duration_s", pa.float64()),
        ("first_tier_rank", pa.int32()),
        ("first_uploaded_at", pa.timestamp("us", tz="UTC")),
    ]
)

# non_original_clips results by (inventory uri, version, files): a version never changes.
_NON_ORIGINALS_CACHE: OrderedDict[tuple, pa.Table] = OrderedDict()


def non_original_clips(store: DeltaStore, version: int | None) -> pa.Table:
    """Clip ids that are never the original of their content (R4 over the whole inventory,
    ``non_original_clips.sql``) at inventory ``version``; computed once per version and
    process, since every batch of a run reads the same inventory."""
    dt = store.table(INVENTORY, version)
    if dt is None:
        return pa.table({"clip_id": pa.array([], pa.string())})
    key = (store.uri(INVENTORY), dt.version(), hash(tuple(dt.file_uris())))
    result = _NON_ORIGINALS_CACHE.get(key)
    if result is None:
        con = connect(store, [INVENTORY], {}, versions={INVENTORY: dt.version()})
        result = fetch_arrow(con, NON_ORIGINALS_SQL)
        con.close()
        _NON_ORIGINALS_CACHE[key] = result
        while len(_NON_ORIGINALS_CACHE) > 8:
            _NON_ORIGINALS_CACHE.popitem(last=False)
    return result


class CutoffJudgement:
    """The part of R5 that no deal changes, at one cutoff and at the Delta versions of
    ``CUTOFF_INPUTS`` it was judged at: the clips probed, not duplicates (R4), uploaded by
    the cutoff, of owners eligible then (R1/R1b, buyer exclusions aside: each clip carries
    its owner's ``excluded_buyers``) and not excluded (R1b); and, for whole_recordings
    deals, their recordings as of the cutoff (R6, R15), computed on first use."""

    def __init__(self, store: DeltaStore, cutoff_at: datetime, review_days: int, versions: dict[str, int]):
        self.store, self.cutoff_at, self.review_days = store, cutoff_at, review_days
        self.versions = {t: versions[t] for t in CUTOFF_INPUTS if t in versions}
        self._non_originals = non_original_clips(store, self.versions.get(INVENTORY))
        self.clips = self._run(CLIPS_AT_CUTOFF_SQL, {"review_days": review_days})
        self._recordings: pa.Table | None = None

    def serves(self, store: DeltaStore, cutoff_at: datetime, review_days: int, versions: dict[str, int]) -> bool:
        """Whether a batch with this cutoff, whose inputs are at ``versions``, may use it."""
        return (store.root, cutoff_at, review_days, self.versions) == (
            self.store.root,
            self.cutoff_at,
            self.review_days,
            {t: versions[t] for t in CUTOFF_INPUTS if t in versions},
        )

    def recordings(self) -> pa.Table:
        """recordings_at_cutoff.sql: the recordings of the clips above, complete or not as of
        the cutoff (R15), with their summed duration and chapter 1's rank and upload (R6)."""
        if self._recordings is None:
            self._recordings = self._run(RECORDINGS_AT_CUTOFF_SQL, {}, {CLIPS_AT_CUTOFF: self.clips})
        return self._recordings

    def _run(self, sql: str, variables: dict, results: dict[str, pa.Table] | None = None) -> pa.Table:
        con = connect(
            self.store,
            [t for t in table_refs(sql) if t not in _RESULTS],
            {"cutoff_at": self.cutoff_at.isoformat(), **variables},
            versions=self.versions,
        )
        for name, table in {NON_ORIGINALS: self._non_originals, **(results or {})}.items():
            con.register(name, table)
        result = fetch_arrow(con, sql)
        con.close()
        return result


def due_batches(store: DeltaStore, as_of: datetime) -> list[dict]:
    """Batches whose cutoff is before ``as_of`` and that were not delivered yet, in
    cutoff order (R6: a deal's batches are processed in cutoff_at order)."""
    batches = store.read("license_batches").to_pylist()
    frozen = store.read(DELIVERED_BATCHES, columns=["deal_id", "batch_id"], schema=DELIVERED_BATCH_SCHEMA)
    done = set(zip(frozen["deal_id"].to_pylist(), frozen["batch_id"].to_pylist()))
    due = [b for b in batches if b["cutoff_at"] < as_of and (b["deal_id"], b["batch_id"]) not in done]
    return sorted(due, key=lambda b: (b["cutoff_at"], b["deal_id"], b["batch_id"]))


def _batch_predicate(batch: dict) -> str:
    return f"deal_id = {sql_literal(batch['deal_id'])} AND batch_id = {sql_literal(batch['batch_id'])}"


def is_delivered(store: DeltaStore, batch: dict) -> bool:
    """Whether the batch is marked delivered (frozen, R12) right now."""
    frozen = store.read(DELIVERED_BATCHES, columns=["deal_id", "batch_id"], schema=DELIVERED_BATCH_SCHEMA)
    return (batch["deal_id"], batch["batch_id"]) in set(
        zip(frozen["deal_id"].to_pylist(), frozen["batch_id"].to_pylist())
    )


class CutoffJudgements:
    """Hands each batch the judgement of its cutoff, judging it again only for another
    cutoff or when an input moved to another version. Batches come in cutoff order
    (``due_batches``), so the latest judgement is the only one kept."""

    def __init__(self) -> None:
        self.latest: CutoffJudgement | None = None

    def for_batch(
        self, store: DeltaStore, cutoff_at: datetime, review_days: int, versions: dict[str, int]
    ) -> CutoffJudgement:
        if self.latest is None or not self.latest.serves(store, cutoff_at, review_days, versions):
            self.latest = None  # released before the next one is judged
            self.latest = CutoffJudgement(store, cutoff_at, review_days, versions)
        return self.latest


def deliver_due_batches(
    store: DeltaStore, as_of: datetime, deals: dict[str, dict], review_days: int
) -> Iterator[tuple[dict, dict | None]]:
    """Deliver every due batch (``due_batches``, R6 cutoff order) whose deal is known,
    yielding ``(batch, deliver_batch's row or None)`` batch by batch.

    One judgement per cutoff: the batches of all deals with the same cutoff come one after
    the other and share a ``CutoffJudgement`` (the deal-independent part of R5); each then
    applies only its deal's terms and earlier deliveries. A deal's batches stay in cutoff
    order, which is all "once per deal" needs: within a cutoff the deals' order changes nothing.
    """
    judgements = CutoffJudgements()
    for batch in due_batches(store, as_of):
        deal = deals.get(batch["deal_id"])
        if deal is not None:  # else its deal file was quarantined
            yield batch, deliver_batch(store, batch, deal, review_days, judgements)


def deliver_batch(
    store: DeltaStore, batch: dict, deal: dict, review_days: int, judgements: CutoffJudgements | None = None
) -> dict | None:
    """Select and freeze one batch; returns its delivered_batches row, or None when
    another writer froze it first (then nothing of its history is changed).

    ``judgements``: shared by the batches of one run (``deliver_due_batches``), so that
    batches with the same cutoff and input versions are judged once (R5).

    Crash safety: the deliveries are written (replacing any left by a crashed run) before
    the batch is marked delivered, and a batch is only ever selected while unmarked.
    Concurrency (docs/RELIABILITY.md): runs take turns on the lake_writer pool; without
    it, the marker is still inserted only if absent, so a batch is never marked (and its
    revenue never counted) twice.
    """
    if is_delivered(store, batch):  # the due list may be older than another run's commit
        return None
    # the raw event logs too: the eligibility check re-judges the batch from them
    versions = {t: v for t in [*INPUTS, "consent_events", "clip_exclusions"] if (v := store.version(t)) is not None}
    # every input is read at the version recorded, the judgement of the cutoff included: the
    # recorded versions are what the batch was computed from, whatever commits meanwhile
    judgement = (judgements or CutoffJudgements()).for_batch(store, batch["cutoff_at"], review_days, versions)
    whole = bool(deal.get("whole_recordings"))
    con = connect(
        store,
        [t for t in BATCH_INPUTS if t != "license_batches"],
        {"deal_id": batch["deal_id"], "batch_id": batch["batch_id"]},
        empty_schemas={DELIVERIES: DELIVERY_SCHEMA},
        versions=versions,
    )
    con.register(CLIPS_AT_CUTOFF, judgement.clips)
    con.register(RECORDINGS_AT_CUTOFF, judgement.recordings() if whole else RECORDINGS_AT_CUTOFF_SCHEMA.empty_table())
    candidates = fetch_arrow(con, LICENSABLE_SQL)
    con.close()
    deliveries = batch_deliveries(batch, deal, candidates)
    store.replace_where(DELIVERIES, deliveries, _batch_predicate(batch))
    per_minute = deal["pricing_model"] == "per_minute"
    row = {
        "deal_id": batch["deal_id"],
        "batch_id": batch["batch_id"],
        "buyer_id": deal["buyer_id"],
        "pricing_model": deal["pricing_model"],
        "cutoff_at": batch["cutoff_at"],
        "revenue_month": revenue_month(batch["cutoff_at"]),
        "max_minutes": batch["max_minutes"],
        "fee_cents": batch["fee_cents"],
        "clips": deliveries.num_rows,
        "billable_seconds": int(pc.sum(deliveries["billable_seconds"]).as_py() or 0),
        "candidates": candidates.num_rows,
        "input_versions": json.dumps(versions, sort_keys=True),
        # the deal's v2 terms, frozen with the batch (R7, R12)
        "sensor_bonus_cents": (deal.get("sensor_bonus_cents") or 0) if per_minute else None,
        "whole_recordings": bool(deal.get("whole_recordings")),
    }
    marker = pa.Table.from_pylist([row], schema=DELIVERED_BATCH_SCHEMA)
    if store.insert_new(DELIVERED_BATCHES, marker, key=["deal_id", "batch_id"]):
        return row
    # Another writer marked the batch between is_delivered() and here (only possible
    # without the pool). Its marker stands; the deliveries just written replaced its own,
    # which is harmless only if both selections are the same.
    frozen = store.read(
        DELIVERED_BATCHES,
        filter=(pc.field("deal_id") == batch["deal_id"]) & (pc.field("batch_id") == batch["batch_id"]),
    )
    frozen_row = frozen.to_pylist()[0]
    if (frozen_row["clips"], frozen_row["billable_seconds"]) != (row["clips"], row["billable_seconds"]):
        raise RuntimeError(
            f"batch {batch['deal_id']}/{batch['batch_id']} was frozen by another writer while this one selected it, "
            f"with a different selection ({frozen_row['clips']} clips, {frozen_row['billable_seconds']} s against "
            f"{row['clips']} clips, {row['billable_seconds']} s): its deal_deliveries rows must be restored from the "
            "Delta version before this run's commit. Two writers ran without the lake_writer pool."
        )
    return None


def batch_deliveries(batch: dict, deal: dict, candidates: pa.Table) -> pa.Table:
    """R6: the batch's deliveries (deal_deliveries rows), chosen from its licensable
    candidates (licensable_clips.sql, in selection order) under the batch's cap."""
    cap = batch["max_minutes"]
    if cap is None or (pc.sum(candidates["billable_seconds"]).as_py() or 0) <= cap * 60:
        # every candidate fits: R6 takes them all, in order (no need to walk them one by one)
        chosen = pa.array(range(candidates.num_rows), pa.int64())
        picked = candidates
    else:
        # clip by clip, or recording by recording under whole_recordings (unit_id, R15)
        seconds = candidates["billable_seconds"].to_pylist()
        chosen = pa.array(select_batch(seconds, cap, candidates["unit_id"].to_pylist()), pa.int64())
        picked = candidates.take(chosen)
    month = revenue_month(batch["cutoff_at"])
    n = picked.num_rows
    per_minute = deal["pricing_model"] == "per_minute"
    return pa.table(
        {
            "deal_id": pa.repeat(pa.scalar(batch["deal_id"], pa.string()), n),
            "batch_id": pa.repeat(pa.scalar(batch["batch_id"], pa.string()), n),
            "clip_id": picked["clip_id"],
            "subscriber_id": picked["subscriber_id"],
            "tier": picked["tier"],
            "billable_seconds": picked["billable_seconds"].cast(pa.int64()),
            "tier_price_cents": (
                picked["tier_price_cents"].cast(pa.int64()) if per_minute else pa.nulls(n, pa.int64())
            ),
            "revenue_month": pa.repeat(pa.scalar(month, pa.string()), n),
            "cutoff_at": pa.repeat(pa.scalar(batch["cutoff_at"], pa.timestamp("us", tz="UTC")), n),
            "selection_rank": pc.add(chosen, 1),
            # v2, frozen with the delivery (R7, R12): the bonus charged and the facts behind it
            "sensor_bonus_cents": (
                picked["sensor_bonus_cents"].cast(pa.int64()) if per_minute else pa.nulls(n, pa.int64())
            ),
            "has_gps": picked["has_gps"],
            "has_imu": picked["has_imu"],
            "camera_model": picked["camera_model"],
            "recording_id": picked["recording_id"],
            "chapter": picked["chapter"].cast(pa.int64()),
        },
        schema=DELIVERY_SCHEMA,
    )


def ensure_tables(store: DeltaStore) -> None:
    """Create both tables, or add the columns this version declares to tables written by an
    older one (the v2 columns; the rows delivered before them keep nulls: R12)."""
    for table, schema in ((DELIVERIES, DELIVERY_SCHEMA), (DELIVERED_BATCHES, DELIVERED_BATCH_SCHEMA)):
        if store.exists(table):
            store.add_missing_columns(table, schema)
        else:
            store.append(table, schema.empty_table())
