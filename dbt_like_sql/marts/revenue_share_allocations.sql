-- R9: each batch's pool split between its contributors by the largest-remainder method.
-- Weights are scaled to integers (per_minute: billable_seconds * price = 60 x the exact
-- value; flat_fee: billable_seconds), which keeps every ratio and remainder exact.
--
-- Incremental (the .yml's `incremental` block; docs/PERFORMANCE.md): a batch's split
-- depends only on its own frozen deliveries (R12), its delivered_batches row and its
-- batch_revenue row, so only the batches whose row in either changed since the last
-- computation are split again; the other batches' rows are kept as they were.
WITH changed_batches AS (
    SELECT deal_id, batch_id FROM delivered_batches__changed
    UNION
    SELECT deal_id, batch_id FROM batch_revenue__changed
),
weights AS (
    SELECT
        d.deal_id, d.batch_id, d.subscriber_id, d.revenue_month,
        count(*) AS clips,
        sum(d.billable_seconds) AS billable_seconds,
        sum(CASE WHEN b.pricing_model = 'per_minute'
                 -- R7 price: tier price + the frozen sensor bonus (v2; null before v2)
                 THEN CAST(d.billable_seconds AS HUGEINT) * (d.tier_price_cents + coalesce(d.sensor_bonus_cents, 0))
                 ELSE CAST(d.billable_seconds AS HUGEINT) END) AS weight
    FROM deal_deliveries AS d
    JOIN delivered_batches AS b USING (deal_id, batch_id)
    LEFT JOIN changed_batches AS c USING (deal_id, batch_id)
    WHERE getvariable('full_refresh') OR c.deal_id IS NOT NULL
    GROUP BY ALL
),
shares AS (
    SELECT
        w.*,
        r.pool_cents,
        sum(w.weight) OVER (PARTITION BY w.deal_id, w.batch_id) AS total_weight
    FROM weights AS w
    JOIN batch_revenue AS r USING (deal_id, batch_id)
),
floored AS (
    SELECT
        *,
        -- floor(pool * w / W) and the remainder (pool * w mod W) / W, exactly
        CASE WHEN total_weight = 0 THEN 0 ELSE (CAST(pool_cents AS HUGEINT) * weight) // total_weight END AS floor_cents,
        CASE WHEN total_weight = 0 THEN 0 ELSE (CAST(pool_cents AS HUGEINT) * weight) % total_weight END AS remainder_num
    FROM shares
),
ranked AS (
    SELECT
        *,
        pool_cents - sum(floor_cents) OVER (PARTITION BY deal_id, batch_id) AS leftover_cents,
        -- largest remainder first; ties to the smaller subscriber_id (R9)
        row_number() OVER (PARTITION BY deal_id, batch_id ORDER BY remainder_num DESC, subscriber_id ASC) AS remainder_rank
    FROM floored
)
SELECT
    deal_id, batch_id, subscriber_id, revenue_month,
    CAST(floor_cents + CASE WHEN remainder_rank <= leftover_cents THEN 1 ELSE 0 END AS BIGINT) AS allocated_cents,
    CAST(floor_cents AS BIGINT) AS floor_cents,
    CAST(CASE WHEN remainder_rank <= leftover_cents THEN 1 ELSE 0 END AS BIGINT) AS remainder_cents,
    CAST(remainder_num AS VARCHAR) || '/' || CAST(total_weight AS VARCHAR) AS remainder_fraction,
    CAST(weight AS VARCHAR) AS weight,
    CAST(total_weight AS VARCHAR) AS batch_weight,
    CAST(clips AS BIGINT) AS clips, CAST(billable_seconds AS BIGINT) AS billable_seconds
FROM ranked
UNION ALL
-- the batches not split again, as the last computation left them
SELECT kept.deal_id, kept.batch_id, kept.subscriber_id, kept.revenue_month, kept.allocated_cents, kept.floor_cents,
       kept.remainder_cents, kept.remainder_fraction, kept.weight, kept.batch_weight, kept.clips, kept.billable_seconds
FROM revenue_share_allocations AS kept
ANTI JOIN changed_batches USING (deal_id, batch_id)
WHERE NOT getvariable('full_refresh')
ORDER BY deal_id, batch_id, subscriber_id
