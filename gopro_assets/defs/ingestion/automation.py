"""Ingestion on arrival: ``landing_sensor`` starts ``ingestion_job`` when a landing file
appears or changes (local folder or s3://). docs/AUTOMATION.md.
"""

import hashlib

import dagster as dg

from gopro_assets.defs.ingestion import assets as ingestion_assets
from gopro_assets.domain.ingestion import landing
from gopro_assets.lake.storage import FileInfo, FileRoot
from gopro_assets.shared.automation import (
    AUTOMATION_TAG,
    IN_PROGRESS,
    INGESTION_JOB,
    MATERIALIZE_JOBS,
    NIGHTLY_JOB,
    RETRY,
)
from gopro_assets.shared.resources import LakehouseResource

ingestion_job = dg.define_asset_job(
    INGESTION_JOB,
    selection=dg.AssetSelection.assets(ingestion_assets.ingest_landing),
    description="Ingest new or changed landing files into the lake (started by landing_sensor).",
    executor_def=dg.in_process_executor,
    op_retry_policy=RETRY,
    run_tags={AUTOMATION_TAG: "ingestion"},
)


# -- the landing sensor ------------------------------------------------------------
WATCHED_KINDS = [*landing.LANDING_KINDS.values(), landing.DEAL_KIND]


def landing_listing(root: FileRoot) -> list[FileInfo]:
    """The tabular and deal files ingestion reads (local or S3), sorted by path. Videos
    under footage/ are not listed: they are read when their upload row names them."""
    files = [f for kind in WATCHED_KINDS for f in root.list(kind.prefix, kind.suffixes)]
    return sorted(files, key=lambda f: f.rel_path)


def listing_digest(files: list[FileInfo]) -> str:
    """SHA-256 of the (path, size) listing: changes when a file appears, grows or shrinks."""
    text = "\n".join(f"{f.rel_path}\t{f.size}" for f in sorted(files, key=lambda f: f.rel_path))
    return hashlib.sha256(text.encode()).hexdigest()


def lake_writer_in_progress(instance: dg.DagsterInstance) -> dg.DagsterRun | None:
    """A queued or running run that ingests the landing zone (ours or a CLI run)."""
    ingest_keys = set(ingestion_assets.ingest_landing.keys)
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=IN_PROGRESS), limit=50):
        ingesting_job = run.job_name in (INGESTION_JOB, NIGHTLY_JOB, MATERIALIZE_JOBS[0])
        if ingesting_job or ingest_keys & set(run.asset_selection or ()):
            return run
    return None


@dg.sensor(
    name="landing_sensor",
    job=ingestion_job,
    minimum_interval_seconds=120,
    description=(
        "Watches the landing zone (local folder or s3://) and starts ingestion_job when a tabular or deal "
        "file appears or changes size. Cursor: SHA-256 of the (path, size) listing."
    ),
)
def landing_sensor(context: dg.SensorEvaluationContext, lakehouse: LakehouseResource):
    root = lakehouse.landing_root()
    files = landing_listing(root)
    if not files:
        return dg.SkipReason(f"no landing files in {root.root}")
    digest = listing_digest(files)
    if digest == context.cursor:
        return dg.SkipReason(f"no new or changed files among {len(files)} landing file(s)")
    busy = lake_writer_in_progress(context.instance)
    if busy is not None:
        # The cursor stays put: the next tick sees the same change and tries again.
        return dg.SkipReason(f"run {busy.run_id} ({busy.job_name}) is ingesting; waiting for it to finish")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"landing-{digest[:16]}",
                tags={"gopro/landing_files": str(len(files)), "gopro/landing_digest": digest[:16]},
            )
        ],
        cursor=digest,
    )
