-- R7 batch revenue and R8 contributor pool, for every delivered (frozen) batch.
WITH delivered AS (
    SELECT
        deal_id, batch_id,
        count(*) AS clips,
        sum(billable_seconds) AS billable_seconds,
        -- sum of exact values times 60: sum(billable_seconds * price), an exact integer;
        -- price = tier price + the sensor bonus frozen with the delivery (R7, v2; null before v2)
        sum(CAST(billable_seconds AS HUGEINT) * (tier_price_cents + coalesce(sensor_bonus_cents, 0))) AS value_x60
    FROM deal_deliveries
    GROUP BY deal_id, batch_id
),
gross AS (
    SELECT
        b.deal_id, b.batch_id, b.buyer_id, b.revenue_month, b.pricing_model, b.cutoff_at,
        coalesce(d.clips, 0) AS clips,
        coalesce(d.billable_seconds, 0) AS billable_seconds,
        CASE b.pricing_model
            -- R7 per_minute: round_half_up(sum of billable_seconds * price / 60); 0 when empty
            WHEN 'per_minute' THEN round_half_up_div(coalesce(d.value_x60, 0), 60)
            -- R7 flat_fee: the batch's fee
            ELSE b.fee_cents
        END AS gross_cents,
        -- R7: a flat_fee batch with no deliveries (or only zero-second clips, which
        -- carry no weight for R9) is a break and allocates nothing
        (b.pricing_model = 'flat_fee' AND coalesce(d.billable_seconds, 0) = 0) AS is_break
    FROM delivered_batches AS b
    LEFT JOIN delivered AS d USING (deal_id, batch_id)
)
SELECT
    deal_id, batch_id, buyer_id, revenue_month, pricing_model, cutoff_at,
    -- counts leave as BIGINT, not the HUGEINT/DECIMAL(38,0) that sum() gives
    CAST(clips AS BIGINT) AS clips, CAST(billable_seconds AS BIGINT) AS billable_seconds,
    CAST(gross_cents AS BIGINT) AS gross_cents,
    -- R8: pool = round_half_up(gross * share_rate); share_rate = num / den exactly
    CAST(CASE WHEN is_break THEN 0
         ELSE round_half_up_div(gross_cents * getvariable('share_rate_num'), getvariable('share_rate_den')) END
         AS BIGINT) AS pool_cents,
    CAST(gross_cents - CASE WHEN is_break THEN 0
         ELSE round_half_up_div(gross_cents * getvariable('share_rate_num'), getvariable('share_rate_den')) END
         AS BIGINT) AS platform_cents,
    CASE WHEN NOT is_break THEN NULL
         WHEN clips = 0 THEN 'flat_fee_batch_without_deliveries'
         ELSE 'flat_fee_batch_without_billable_seconds' END AS break_reason
FROM gross
ORDER BY revenue_month, deal_id, batch_id
