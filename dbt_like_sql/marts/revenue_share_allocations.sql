-- R9: each batch's pool split between its contributors by the largest-remainder method.
-- Weights are scaled to integers (per_minute: billable_seconds * price = 60 x the exact
-- value; flat_fee: billable_seconds), which keeps every ratio and remainder exact.
WITH weights AS (
    SELECT
        d.deal_id, d.batch_id, d.subscriber_id, d.revenue_month,
        count(*) AS clips,
        sum(d.billable_seconds) AS billable_seconds,
        sum(CASE WHEN b.pricing_model = 'per_minute'
                 THEN CAST(d.billable_seconds AS HUGEINT) * d.tier_price_cents
                 ELSE CAST(d.billable_seconds AS HUGEINT) END) AS weight
    FROM deal_deliveries AS d
    JOIN delivered_batches AS b USING (deal_id, batch_id)
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
ORDER BY deal_id, batch_id, subscriber_id
