"""footage_recordings: one row per recording (R15), from the whole footage inventory.

Unpartitioned, downstream of the daily inventory: a recording's chapters may be uploaded on
different days, and a chapter that arrives later completes a recording first seen days
before. A daily table keyed by the first chapter's day would need that old partition
rewritten by a later day's run; one table recomputed from every inventory partition after
each inventory run is right whatever the order of arrival (docs/FOOTAGE.md). It runs in the
nightly and in stage 3 of ``gopro-lake materialize``, after the inventory; its blocking
check (checks.py) recomputes ``complete`` from the inventory on its own.
"""

import dagster as dg

from gopro_assets.domain.footage.recordings import refresh_recordings
from gopro_assets.domain.footage.tables import FOOTAGE_RECORDINGS
from gopro_assets.shared.concurrency import LAKE_WRITER_POOL
from gopro_assets.shared.metadata import column_schema, table_metadata
from gopro_assets.shared.resources import LakehouseResource


@dg.asset(
    deps=["footage_inventory"],
    group_name="footage",
    owners=["team:data-platform"],
    kinds={"delta", "duckdb", "python"},
    description=(
        "One row per recording (R15): the chapter files a GoPro camera splits a recording into, grouped by "
        "subscriber, folder, family and file number from their names. chapters counts the chapters that are "
        "probed, not quarantined and not duplicates; complete when they are exactly 1..n. Recomputed from the "
        "whole inventory, so a chapter uploaded on a later day completes its recording."
    ),
    metadata={"dagster/column_schema": column_schema(FOOTAGE_RECORDINGS)},
    # a whole-table rewrite: writers of whole tables take turns (gopro_assets/shared/concurrency.py)
    pool=LAKE_WRITER_POOL,
)
def footage_recordings(context: dg.AssetExecutionContext, lakehouse: LakehouseResource) -> dg.MaterializeResult:
    store = lakehouse.store()
    report = refresh_recordings(store)
    context.log.info(
        f"{report['recordings']} recording(s): {report['complete']} complete, {report['incomplete']} incomplete"
        + ("" if report["written"] else " (unchanged: table left at its version)")
    )
    if report["inventory_rows_without_recording"]:
        context.log.warning(
            f"{report['inventory_rows_without_recording']} footage_inventory row(s) have no recording_id: probed "
            "before R15 and not re-probed since. Materialize footage_inventory over their days (gopro-lake "
            "materialize) to fill them (docs/FOOTAGE.md, Existing lakes)"
        )
    return dg.MaterializeResult(
        metadata=table_metadata(
            store,
            FOOTAGE_RECORDINGS,
            complete=dg.MetadataValue.int(report["complete"]),
            incomplete=dg.MetadataValue.int(report["incomplete"]),
            inventory_rows_without_recording=dg.MetadataValue.int(report["inventory_rows_without_recording"]),
        )
    )
