-- R5: the clips licensable in one batch of one deal, in R6 selection order
-- (tier rank desc, uploaded_at asc, clip_id asc).
-- Variables: deal_id, batch_id. Run by the deal_deliveries asset batch by batch in cutoff
-- order, so "delivered in an earlier batch" sees the batches before.
--
-- One judgement per cutoff: what does not depend on the deal (R1/R1b owner eligibility,
-- R1b clip exclusions, R4, uploaded by the cutoff) is judged once for every batch with the
-- same cutoff, by clips_eligible_at_cutoff.sql; its result is read here as
-- `clips_eligible_at_cutoff`, each row with its owner's excluded_buyers. This query only
-- applies the deal's own terms: buyer exclusions (R1), criteria, priced tier, once per deal.
--
-- With the v2 criterion whole_recordings (R6, R15) the unit is the recording: only the
-- chapters of licensable recordings are returned, a recording's chapters one after the
-- other (chapter order), the recordings in R6 order (tier rank of chapter 1 desc,
-- uploaded_at of chapter 1 asc, recording_id asc). `recordings_at_cutoff` (the result of
-- recordings_at_cutoff.sql at the same cutoff; empty for a deal without whole_recordings)
-- says which recordings are complete as of the cutoff. `unit_id` (the recording_id, or the
-- clip_id clip by clip) tells the selection (selection.py) which rows go together.
WITH deal AS (
    SELECT *, list_transform(camera_models, lambda m: lower(m)) AS camera_models_lower  -- R5 (v2): ignoring case
    FROM license_deals WHERE deal_id = getvariable('deal_id')
),
selection_mode AS (
    SELECT coalesce(whole_recordings, false) AS whole FROM deal
),
candidates AS (
    SELECT
        c.clip_id, c.subscriber_id, c.tier, c.billable_seconds, c.uploaded_at,
        CASE c.tier
            WHEN 'aerial' THEN deal.price_aerial_cents
            WHEN 'uhd' THEN deal.price_uhd_cents
            WHEN 'hd' THEN deal.price_hd_cents
            WHEN 'sd' THEN deal.price_sd_cents
        END AS tier_price_cents,
        -- R7 (v2): the deal's bonus per minute when the clip has both GPS and IMU, frozen per delivery
        CASE WHEN deal.pricing_model = 'per_minute' THEN
            CASE WHEN coalesce(c.has_gps, false) AND coalesce(c.has_imu, false)
                 THEN coalesce(deal.sensor_bonus_cents, 0) ELSE 0 END
        END AS sensor_bonus_cents,
        c.tier_rank,
        coalesce(c.has_gps, false) AS has_gps, coalesce(c.has_imu, false) AS has_imu, c.camera_model,
        c.recording_id, c.chapter,
        deal.pricing_model
    FROM clips_eligible_at_cutoff AS c, deal
    WHERE NOT coalesce(list_contains(c.excluded_buyers, deal.buyer_id), false)               -- R1 per-buyer exclusion
      AND (deal.min_short_side_px IS NULL OR c.short_side_px >= deal.min_short_side_px)
      AND (deal.min_fps IS NULL OR c.fps >= deal.min_fps)
      AND (deal.activities IS NULL OR coalesce(list_contains(deal.activities, c.activity), false))
      AND (NOT coalesce(deal.unpublished_only, false) OR NOT c.published)
      -- under whole_recordings min_duration_s applies to the recording, not per chapter (R6)
      AND (deal.min_duration_s IS NULL OR coalesce(deal.whole_recordings, false) OR c.duration_s >= deal.min_duration_s)
      AND (NOT coalesce(deal.requires_gps, false) OR coalesce(c.has_gps, false))        -- R5 (v2)
      AND (NOT coalesce(deal.requires_imu, false) OR coalesce(c.has_imu, false))        -- R5 (v2)
      -- R5 (v2): camera_model in camera_models ignoring case; location_cell begins with one
      -- of the geohash prefixes (stored lower case). A null model or cell never matches.
      AND (deal.camera_models IS NULL OR coalesce(list_contains(deal.camera_models_lower, lower(c.camera_model)), false))
      AND (deal.location_cells IS NULL
           OR coalesce(len(list_filter(deal.location_cells, lambda p: starts_with(c.location_cell, p))) > 0, false))
      -- R15: a clip without a recording_id (probed before R15) belongs to no recording
      AND (NOT coalesce(deal.whole_recordings, false) OR c.recording_id IS NOT NULL)
      -- R5 once per deal: not delivered in an EARLIER batch of the deal. This batch's own rows
      -- (left by a run that crashed before marking it delivered) are replaced, so they do not count.
      AND c.clip_id NOT IN (SELECT clip_id FROM deal_deliveries
                            WHERE deal_id = getvariable('deal_id') AND batch_id IS DISTINCT FROM getvariable('batch_id'))
),
licensable AS (
    SELECT c.*
    FROM candidates AS c
    WHERE c.pricing_model <> 'per_minute' OR c.tier_price_cents IS NOT NULL              -- R5 priced tier
),
licensable_recordings AS (
    -- R6: complete as of the cutoff, every chapter licensable by R5 (so none delivered
    -- earlier in the deal), and the summed duration_s >= min_duration_s
    SELECT r.*
    FROM recordings_at_cutoff AS r
    JOIN (SELECT l.recording_id, count(*) AS licensable_chapters
          FROM licensable AS l, selection_mode WHERE selection_mode.whole GROUP BY l.recording_id) AS l
        USING (recording_id)
    CROSS JOIN deal
    WHERE r.complete
      AND l.licensable_chapters = r.chapters
      AND (deal.min_duration_s IS NULL OR r.recording_duration_s >= deal.min_duration_s)
)
SELECT l.clip_id, l.subscriber_id, l.tier, l.tier_rank, l.billable_seconds, l.uploaded_at, l.tier_price_cents,
       l.sensor_bonus_cents, l.has_gps, l.has_imu, l.camera_model, l.recording_id, l.chapter,
       CASE WHEN selection_mode.whole THEN l.recording_id ELSE l.clip_id END AS unit_id
FROM licensable AS l
CROSS JOIN selection_mode
LEFT JOIN licensable_recordings AS r ON r.recording_id = l.recording_id
WHERE NOT selection_mode.whole OR r.recording_id IS NOT NULL                                        -- R6 whole recordings
ORDER BY coalesce(r.first_tier_rank, l.tier_rank) DESC,                                   -- R6
         coalesce(r.first_uploaded_at, l.uploaded_at) ASC,
         unit_id ASC, l.chapter ASC, l.clip_id ASC
