-- R5: the clips licensable in one batch of one deal, in R6 selection order
-- (tier rank desc, uploaded_at asc, clip_id asc).
-- Variables: deal_id, batch_id, cutoff_at, review_days. Run by the deal_deliveries asset batch by
-- batch in cutoff order, so "delivered in an earlier batch" sees the batches before.
WITH deal AS (
    SELECT * FROM license_deals WHERE deal_id = getvariable('deal_id')
),
originals AS (
    -- R4 judged over the WHOLE inventory, not only from the stored is_duplicate flag: a
    -- partition run flags the clips it writes, but cannot re-flag a clip of another
    -- partition that a late-arriving, earlier upload of the same file made a duplicate.
    SELECT clip_id FROM footage_inventory
    QUALIFY fingerprint IS NULL
         OR row_number() OVER (PARTITION BY fingerprint ORDER BY uploaded_at, clip_id) = 1
),
candidates AS (
    SELECT
        i.clip_id, i.subscriber_id, i.tier, i.billable_seconds, i.uploaded_at, i.activity,
        CAST(getvariable('cutoff_at') AS TIMESTAMPTZ) AS t,
        deal.buyer_id,
        deal.pricing_model,
        CASE i.tier
            WHEN 'aerial' THEN deal.price_aerial_cents
            WHEN 'uhd' THEN deal.price_uhd_cents
            WHEN 'hd' THEN deal.price_hd_cents
            WHEN 'sd' THEN deal.price_sd_cents
        END AS tier_price_cents,
        CASE i.tier WHEN 'aerial' THEN 4 WHEN 'uhd' THEN 3 WHEN 'hd' THEN 2 ELSE 1 END AS tier_rank
    FROM footage_inventory AS i, deal
    WHERE NOT i.is_duplicate                                            -- R4
      AND i.clip_id IN (SELECT clip_id FROM originals)                  -- R4 (whole inventory)
      AND i.uploaded_at <= CAST(getvariable('cutoff_at') AS TIMESTAMPTZ)
      AND (deal.min_short_side_px IS NULL OR i.short_side_px >= deal.min_short_side_px)
      AND (deal.min_fps IS NULL OR i.fps >= deal.min_fps)
      AND (deal.activities IS NULL OR coalesce(list_contains(deal.activities, i.activity), false))
      AND (NOT coalesce(deal.unpublished_only, false) OR NOT i.published)
      AND (deal.min_duration_s IS NULL OR i.duration_s >= deal.min_duration_s)
),
with_owner AS (
    SELECT c.*, s.country, s.subscribed_at, s.cancelled_at, s.invited_at,
           ct.action AS consent_action, ct.excluded_buyers, ct.enrolled_at
    FROM candidates AS c
    JOIN subscribers AS s ON s.subscriber_id = c.subscriber_id
    ASOF LEFT JOIN int_consent_timeline AS ct
        ON c.subscriber_id = ct.subscriber_id AND c.t >= ct.event_at
),
with_exclusion AS (
    SELECT w.*, x.action AS exclusion_action
    FROM with_owner AS w
    ASOF LEFT JOIN int_clip_exclusion_timeline AS x
        ON w.clip_id = x.clip_id AND w.t >= x.event_at
)
SELECT clip_id, subscriber_id, tier, tier_rank, billable_seconds, uploaded_at, tier_price_cents
FROM with_exclusion
WHERE ineligible_reason(country, subscribed_at, cancelled_at, invited_at, consent_action, enrolled_at, t,
                        getvariable('review_days')) IS NULL                  -- R1, R1b
  AND NOT coalesce(list_contains(excluded_buyers, buyer_id), false)         -- R1 per-buyer exclusion
  AND coalesce(exclusion_action, 'include') <> 'exclude'                    -- R1b clip exclusion
  AND (pricing_model <> 'per_minute' OR tier_price_cents IS NOT NULL)       -- R5 priced tier
  -- R5 once per deal: not delivered in an EARLIER batch of the deal. This batch's own rows
  -- (left by a run that crashed before marking it delivered) are replaced, so they do not count.
  AND clip_id NOT IN (SELECT clip_id FROM deal_deliveries
                      WHERE deal_id = getvariable('deal_id') AND batch_id IS DISTINCT FROM getvariable('batch_id'))
ORDER BY tier_rank DESC, uploaded_at ASC, clip_id ASC                       -- R6
