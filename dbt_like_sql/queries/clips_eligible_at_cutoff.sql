-- R5, the part that does not depend on the deal: the clips that may be licensed to SOME
-- deal at one cutoff. Deliveries run it once per cutoff (and input versions), and every
-- batch with that cutoff, whatever its deal, reads the result as `clips_eligible_at_cutoff`
-- in licensable_clips.sql, which applies the deal's own terms (R1 buyer exclusions,
-- criteria, priced tier, once per deal, R6 order).
-- Variables: cutoff_at (review_days is in consent_snapshots). `non_original_clips` is the result of
-- non_original_clips.sql (R4 over the whole inventory) for the same inventory version.
--
-- A clip is here when it is probed and in the inventory, not a duplicate (R4), uploaded by
-- the cutoff, its owner eligible at the cutoff by R1/R1b for a buyer they do not exclude,
-- and the clip not excluded at the cutoff (R1b). Each row carries the owner's
-- excluded_buyers (R1) and every column a deal's criteria read.
WITH owner_states AS (
    -- R1, R1b: the owners eligible at the cutoff (buyer exclusions aside), with the
    -- excluded_buyers of their consent state then: the consent_snapshots interval holding
    -- the cutoff. The one place deliveries judge consent.
    SELECT c.subscriber_id, c.excluded_buyers
    FROM consent_snapshots AS c
    WHERE c.valid_from <= CAST(getvariable('cutoff_at') AS TIMESTAMPTZ)
      AND (c.valid_to IS NULL OR c.valid_to > CAST(getvariable('cutoff_at') AS TIMESTAMPTZ))
      AND c.is_eligible
),
excluded_clips AS (
    -- R1b: clips whose last exclusion event at or before the cutoff is an exclude
    SELECT x.clip_id
    FROM int_clip_exclusion_timeline AS x
    WHERE x.event_at <= CAST(getvariable('cutoff_at') AS TIMESTAMPTZ)
    QUALIFY row_number() OVER (PARTITION BY x.clip_id ORDER BY x.event_at DESC) = 1 AND x.action = 'exclude'
)
SELECT
    i.clip_id, i.subscriber_id, i.tier,
    CASE i.tier WHEN 'aerial' THEN 4 WHEN 'uhd' THEN 3 WHEN 'hd' THEN 2 ELSE 1 END AS tier_rank,      -- R3, R6
    i.billable_seconds, i.uploaded_at, i.duration_s, i.short_side_px, i.fps, i.activity, i.published,
    i.has_gps, i.has_imu, i.camera_model, i.location_cell, i.recording_id, i.chapter,
    o.excluded_buyers
FROM footage_inventory AS i
JOIN owner_states AS o ON o.subscriber_id = i.subscriber_id                                -- R1, R1b
WHERE NOT i.is_duplicate                                                                   -- R4
  AND i.clip_id NOT IN (SELECT clip_id FROM non_original_clips)                            -- R4 (whole inventory)
  AND i.uploaded_at <= CAST(getvariable('cutoff_at') AS TIMESTAMPTZ)                       -- (a constant: pushed into the scan)
  AND i.clip_id NOT IN (SELECT clip_id FROM excluded_clips)                                -- R1b clip exclusion
