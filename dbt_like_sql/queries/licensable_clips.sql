-- R5: the clips licensable in one batch of one deal, in R6 selection order
-- (tier rank desc, uploaded_at asc, clip_id asc).
-- Variables: deal_id, batch_id, cutoff_at, review_days. Run by the deal_deliveries asset batch by
-- batch in cutoff order, so "delivered in an earlier batch" sees the batches before.
-- `non_original_clips` is the result of non_original_clips.sql (R4 over the whole
-- inventory) for the same inventory version, computed once per version by the caller.
--
-- Cost at library scale: the cutoff is the same for every clip of the batch, so R1/R1b is
-- judged once per OWNER (one ASOF join over the subscribers) and R1b exclusions once per
-- excluded clip; the clips then only meet hash joins. Clips already delivered in this deal
-- are dropped before those joins.
WITH deal AS (
    SELECT * FROM license_deals WHERE deal_id = getvariable('deal_id')
),
cutoff AS (
    SELECT CAST(getvariable('cutoff_at') AS TIMESTAMPTZ) AS t
),
eligible_owners AS (
    -- R1, R1b: the owner's consent state at the cutoff (the last event with event_at <= t)
    SELECT s.subscriber_id
    FROM (SELECT s.*, cutoff.t FROM subscribers AS s, cutoff) AS s
    ASOF LEFT JOIN int_consent_timeline AS ct
        ON s.subscriber_id = ct.subscriber_id AND s.t >= ct.event_at
    CROSS JOIN deal
    WHERE ineligible_reason(s.country, s.subscribed_at, s.cancelled_at, s.invited_at, ct.action, ct.enrolled_at, s.t,
                            getvariable('review_days')) IS NULL                          -- R1, R1b
      AND NOT coalesce(list_contains(ct.excluded_buyers, deal.buyer_id), false)          -- R1 per-buyer exclusion
),
excluded_clips AS (
    -- R1b: clips whose last exclusion event at or before the cutoff is an exclude
    SELECT x.clip_id
    FROM int_clip_exclusion_timeline AS x, cutoff
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
        CASE i.tier WHEN 'aerial' THEN 4 WHEN 'uhd' THEN 3 WHEN 'hd' THEN 2 ELSE 1 END AS tier_rank,
        deal.pricing_model
    FROM footage_inventory AS i, deal
    WHERE NOT i.is_duplicate                                                             -- R4
      AND i.clip_id NOT IN (SELECT clip_id FROM non_original_clips)                      -- R4 (whole inventory)
      AND i.uploaded_at <= CAST(getvariable('cutoff_at') AS TIMESTAMPTZ)                 -- (a constant: pushed into the scan)
      AND (deal.min_short_side_px IS NULL OR i.short_side_px >= deal.min_short_side_px)
      AND (deal.min_fps IS NULL OR i.fps >= deal.min_fps)
      AND (deal.activities IS NULL OR coalesce(list_contains(deal.activities, i.activity), false))
      AND (NOT coalesce(deal.unpublished_only, false) OR NOT i.published)
      AND (deal.min_duration_s IS NULL OR i.duration_s >= deal.min_duration_s)
      -- R5 once per deal: not delivered in an EARLIER batch of the deal. This batch's own rows
      -- (left by a run that crashed before marking it delivered) are replaced, so they do not count.
      AND i.clip_id NOT IN (SELECT clip_id FROM deal_deliveries
                            WHERE deal_id = getvariable('deal_id') AND batch_id IS DISTINCT FROM getvariable('batch_id'))
)
SELECT c.clip_id, c.subscriber_id, c.tier, c.tier_rank, c.billable_seconds, c.uploaded_at, c.tier_price_cents
FROM candidates AS c
JOIN eligible_owners AS o ON o.subscriber_id = c.subscriber_id                           -- R1, R1b
WHERE (c.pricing_model <> 'per_minute' OR c.tier_price_cents IS NOT NULL)                 -- R5 priced tier
  AND c.clip_id NOT IN (SELECT clip_id FROM excluded_clips)                               -- R1b clip exclusion
ORDER BY c.tier_rank DESC, c.uploaded_at ASC, c.clip_id ASC                               -- R6
