-- R15: one row per recording of the WHOLE inventory (footage_recordings), run by the
-- footage_recordings asset (gopro_assets/domain/footage/recordings.py, refresh_recordings).
--
-- A chapter counts when it is probed and not quarantined (it is in footage_inventory: a clip
-- quarantined with severity 'error' never is; a telemetry 'warning' leaves it there, R2b)
-- and is not a duplicate (R4): neither flagged is_duplicate nor a later copy of its
-- fingerprint by (uploaded_at, clip_id) over the whole inventory, as non_original_clips.sql
-- judges it for the deliveries (clips_eligible_at_cutoff.sql). A recording is complete when its counted chapters
-- are exactly 1..n, each once. Rows without a recording_id (written before R15, not
-- re-probed since) belong to no recording.
WITH shared AS (
    SELECT fingerprint
    FROM footage_inventory
    WHERE fingerprint IS NOT NULL
    GROUP BY fingerprint
    HAVING count(*) > 1
),
later_copies AS (
    SELECT clip_id
    FROM footage_inventory
    WHERE fingerprint IN (SELECT fingerprint FROM shared)
    QUALIFY row_number() OVER (PARTITION BY fingerprint ORDER BY uploaded_at, clip_id) > 1
),
chapters AS (
    SELECT recording_id, subscriber_id, chapter, clip_id, duration_s, billable_seconds,
           NOT is_duplicate AND clip_id NOT IN (SELECT clip_id FROM later_copies) AS counted
    FROM footage_inventory
    WHERE recording_id IS NOT NULL
),
recordings AS (
    SELECT recording_id,
           min(subscriber_id) AS subscriber_id,
           count(*) FILTER (WHERE counted) AS chapters,
           count(DISTINCT chapter) FILTER (WHERE counted) AS distinct_chapters,
           min(chapter) FILTER (WHERE counted) AS lowest,
           max(chapter) FILTER (WHERE counted) AS highest,
           -- summed exactly (to the nanosecond): a float sum depends on the order DuckDB's
           -- parallel aggregation meets the rows, so a re-run could change the last bits
           CAST(sum(CAST(duration_s AS DECIMAL(38, 9))) FILTER (WHERE counted) AS DOUBLE) AS recording_duration_s,
           sum(billable_seconds) FILTER (WHERE counted) AS billable_seconds,
           min(clip_id) FILTER (WHERE counted AND chapter = 1) AS first_clip_id
    FROM chapters
    GROUP BY recording_id
)
SELECT recording_id,
       subscriber_id,
       chapters,
       chapters > 0 AND lowest = 1 AND highest = chapters AND distinct_chapters = chapters AS complete,
       coalesce(recording_duration_s, 0.0) AS recording_duration_s,
       CAST(coalesce(billable_seconds, 0) AS BIGINT) AS billable_seconds,
       first_clip_id
FROM recordings
ORDER BY recording_id
