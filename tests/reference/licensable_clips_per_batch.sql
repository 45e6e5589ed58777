-- TEST REFERENCE, not used by the lakehouse: the per-batch R5 query as it was before the
-- deal-independent part was judged once per cutoff (dbt_like_sql/queries/
-- clips_eligible_at_cutoff.sql + licensable_clips.sql), kept to hold the new path's
-- deliveries bit-identical (tests/test_deliveries_per_cutoff.py). Self-contained: it reads
-- only raw tables (subscribers, consent_events, clip_exclusions, footage_inventory,
-- license_deals, deal_deliveries) and computes the consent timeline (as
-- int_consent_timeline.sql did), the clip exclusion timeline, R4's non-original clips
-- (non_original_clips.sql) and R1/R1b (the ineligible_reason macro) itself.
-- Variables: deal_id, batch_id, cutoff_at, review_days.
WITH consent_ordered AS (
    SELECT
        subscriber_id, event_id, event_at, action, excluded_buyers,
        sum(CASE WHEN action = 'opt_out' THEN 1 ELSE 0 END) OVER (
            PARTITION BY subscriber_id ORDER BY event_at, event_id ROWS UNBOUNDED PRECEDING
        ) AS enrolment_period
    FROM consent_events
),
consent_enrolled AS (
    SELECT
        *,
        CASE WHEN action = 'opt_in' THEN
            min(CASE WHEN action = 'opt_in' THEN event_at END) OVER (PARTITION BY subscriber_id, enrolment_period)
        END AS enrolled_at
    FROM consent_ordered
),
consent_timeline AS (
    SELECT subscriber_id, event_at, event_id, action, coalesce(excluded_buyers, []) AS excluded_buyers, enrolled_at
    FROM consent_enrolled
    QUALIFY row_number() OVER (PARTITION BY subscriber_id, event_at ORDER BY event_id DESC) = 1
),
clip_exclusion_timeline AS (
    SELECT clip_id, subscriber_id, event_at, event_id, action
    FROM clip_exclusions
    QUALIFY row_number() OVER (PARTITION BY clip_id, event_at ORDER BY event_id DESC) = 1
),
shared_fingerprints AS (
    SELECT fingerprint
    FROM footage_inventory
    WHERE fingerprint IS NOT NULL
    GROUP BY fingerprint
    HAVING count(*) > 1
),
ranked_copies AS (
    SELECT clip_id, row_number() OVER (PARTITION BY fingerprint ORDER BY uploaded_at, clip_id) AS copy_number
    FROM footage_inventory
    WHERE fingerprint IN (SELECT fingerprint FROM shared_fingerprints)
),
later_copies AS (
    SELECT DISTINCT clip_id FROM ranked_copies WHERE copy_number > 1
),
non_original_clips AS (
    SELECT clip_id FROM later_copies
    EXCEPT
    SELECT clip_id FROM ranked_copies WHERE copy_number = 1
    EXCEPT
    SELECT i.clip_id
    FROM footage_inventory AS i
    WHERE i.clip_id IN (SELECT clip_id FROM later_copies)
      AND (i.fingerprint IS NULL OR i.fingerprint NOT IN (SELECT fingerprint FROM shared_fingerprints))
),
deal AS (
    SELECT *, list_transform(camera_models, lambda m: lower(m)) AS camera_models_lower  -- R5 (v2): ignoring case
    FROM license_deals WHERE deal_id = getvariable('deal_id')
),
cutoff AS (
    SELECT CAST(getvariable('cutoff_at') AS TIMESTAMPTZ) AS t
),
selection_mode AS (
    SELECT coalesce(whole_recordings, false) AS whole FROM deal
),
eligible_owners AS (
    -- R1, R1b: the owner's consent state at the cutoff (the last event with event_at <= t)
    SELECT s.subscriber_id
    FROM (SELECT s.*, cutoff.t FROM subscribers AS s, cutoff) AS s
    ASOF LEFT JOIN consent_timeline AS ct
        ON s.subscriber_id = ct.subscriber_id AND s.t >= ct.event_at
    CROSS JOIN deal
    WHERE CASE                                                                           -- R1, R1b
              WHEN s.country IS DISTINCT FROM 'US' THEN 'not_us'
              WHEN s.subscribed_at > s.t THEN 'not_yet_subscribed'
              WHEN s.cancelled_at IS NOT NULL AND s.cancelled_at <= s.t THEN 'cancelled'
              WHEN s.invited_at IS NULL OR s.invited_at > s.t THEN 'not_invited'
              WHEN ct.action IS DISTINCT FROM 'opt_in' THEN 'not_opted_in'
              WHEN ct.enrolled_at + to_days(CAST(getvariable('review_days') AS INTEGER)) > s.t THEN 'in_review_window'
          END IS NULL
      AND NOT coalesce(list_contains(ct.excluded_buyers, deal.buyer_id), false)          -- R1 per-buyer exclusion
),
excluded_clips AS (
    -- R1b: clips whose last exclusion event at or before the cutoff is an exclude
    SELECT x.clip_id
    FROM clip_exclusion_timeline AS x, cutoff
    WHERE x.event_at <= cutoff.t
    QUALIFY row_number() OVER (PARTITION BY x.clip_id ORDER BY x.event_at DESC) = 1 AND x.action = 'exclude'
),
candidates AS (
    SELECT
        i.clip_id, i.subscriber_id, i.tier, i.billable_seconds, i.uploaded_at,
        CASE i.tier
            WHEN 'aerial' THEN deal.price_aerial_cents
            WHEN 'uhd' THEN deal.price_uhd_cents
            WHEN 'hd' THEN deal.price_hd_cents
            WHEN 'sd' THEN deal.price_sd_cents
        END AS tier_price_cents,
        -- R7 (v2): the deal's bonus per minute when the clip has both GPS and IMU, frozen per delivery
        CASE WHEN deal.pricing_model = 'per_minute' THEN
            CASE WHEN coalesce(i.has_gps, false) AND coalesce(i.has_imu, false)
                 THEN coalesce(deal.sensor_bonus_cents, 0) ELSE 0 END
        END AS sensor_bonus_cents,
        CASE i.tier WHEN 'aerial' THEN 4 WHEN 'uhd' THEN 3 WHEN 'hd' THEN 2 ELSE 1 END AS tier_rank,
        coalesce(i.has_gps, false) AS has_gps, coalesce(i.has_imu, false) AS has_imu, i.camera_model,
        i.recording_id, i.chapter,
        deal.pricing_model
    FROM footage_inventory AS i, deal
    WHERE NOT i.is_duplicate                                                             -- R4
      AND i.clip_id NOT IN (SELECT clip_id FROM non_original_clips)                      -- R4 (whole inventory)
      AND i.uploaded_at <= CAST(getvariable('cutoff_at') AS TIMESTAMPTZ)                 -- (a constant: pushed into the scan)
      AND (deal.min_short_side_px IS NULL OR i.short_side_px >= deal.min_short_side_px)
      AND (deal.min_fps IS NULL OR i.fps >= deal.min_fps)
      AND (deal.activities IS NULL OR coalesce(list_contains(deal.activities, i.activity), false))
      AND (NOT coalesce(deal.unpublished_only, false) OR NOT i.published)
      -- under whole_recordings min_duration_s applies to the recording, not per chapter (R6)
      AND (deal.min_duration_s IS NULL OR coalesce(deal.whole_recordings, false) OR i.duration_s >= deal.min_duration_s)
      AND (NOT coalesce(deal.requires_gps, false) OR coalesce(i.has_gps, false))        -- R5 (v2)
      AND (NOT coalesce(deal.requires_imu, false) OR coalesce(i.has_imu, false))        -- R5 (v2)
      -- R5 (v2): camera_model in camera_models ignoring case; location_cell begins with one
      -- of the geohash prefixes (stored lower case). A null model or cell never matches.
      AND (deal.camera_models IS NULL OR coalesce(list_contains(deal.camera_models_lower, lower(i.camera_model)), false))
      AND (deal.location_cells IS NULL
           OR coalesce(len(list_filter(deal.location_cells, lambda p: starts_with(i.location_cell, p))) > 0, false))
      -- R15: a clip without a recording_id (probed before R15) belongs to no recording
      AND (NOT coalesce(deal.whole_recordings, false) OR i.recording_id IS NOT NULL)
      -- R5 once per deal: not delivered in an EARLIER batch of the deal. This batch's own rows
      -- (left by a run that crashed before marking it delivered) are replaced, so they do not count.
      AND i.clip_id NOT IN (SELECT clip_id FROM deal_deliveries
                            WHERE deal_id = getvariable('deal_id') AND batch_id IS DISTINCT FROM getvariable('batch_id'))
),
licensable AS (
    SELECT c.*
    FROM candidates AS c
    JOIN eligible_owners AS o ON o.subscriber_id = c.subscriber_id                       -- R1, R1b
    WHERE (c.pricing_model <> 'per_minute' OR c.tier_price_cents IS NOT NULL)             -- R5 priced tier
      AND c.clip_id NOT IN (SELECT clip_id FROM excluded_clips)                           -- R1b clip exclusion
),
counted_chapters AS (
    -- R6/R15 (whole_recordings only): the chapters of a recording uploaded by the cutoff that
    -- count (in the inventory, so probed and not quarantined; not duplicates, R4), for the
    -- recordings with at least one licensable chapter
    SELECT i.recording_id, i.chapter, i.clip_id, i.duration_s, i.uploaded_at,
           CASE i.tier WHEN 'aerial' THEN 4 WHEN 'uhd' THEN 3 WHEN 'hd' THEN 2 ELSE 1 END AS tier_rank
    FROM footage_inventory AS i, selection_mode
    WHERE selection_mode.whole
      AND i.recording_id IN (SELECT l.recording_id FROM licensable AS l, selection_mode WHERE selection_mode.whole)
      AND NOT i.is_duplicate
      AND i.clip_id NOT IN (SELECT clip_id FROM non_original_clips)
      AND i.uploaded_at <= CAST(getvariable('cutoff_at') AS TIMESTAMPTZ)
),
recordings AS (
    SELECT recording_id,
           count(*) AS chapters,
           -- complete as of the cutoff: the counted chapters are exactly 1..n, each once (R15)
           count(*) = count(DISTINCT chapter) AND min(chapter) = 1 AND max(chapter) = count(*) AS complete,
           -- summed in chapter order: the same float on every run (as footage_recordings.sql)
           list_sum(list(duration_s ORDER BY chapter, clip_id)) AS recording_duration_s,
           min(tier_rank) FILTER (WHERE chapter = 1) AS first_tier_rank,
           min(uploaded_at) FILTER (WHERE chapter = 1) AS first_uploaded_at
    FROM counted_chapters
    GROUP BY recording_id
),
licensable_recordings AS (
    -- R6: complete, every chapter licensable by R5 (so none delivered earlier in the deal),
    -- and the summed duration_s >= min_duration_s
    SELECT r.*
    FROM recordings AS r
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
