-- What each delivered clip realised per minute: the valuation model's target
-- (docs/VALUATION.md). Analytics, not money: a DOUBLE, never paid out from.
--   per_minute: R7's price, cents per minute: the deal's tier price plus the sensor bonus
--               frozen with the delivery (v2: a clip with GPS and IMU);
--   flat_fee:   the batch fee spread over the batch's billable seconds,
--               gross_cents * 60 / billable_seconds (R9 weights flat-fee batches by seconds,
--               so every delivered minute of the batch earned the same).
-- A flat-fee break (no billable seconds) realised nothing measurable: NULL, not trained on.
SELECT
    d.deal_id,
    d.batch_id,
    d.clip_id,
    d.subscriber_id,
    b.buyer_id,
    b.pricing_model,
    d.revenue_month,
    d.cutoff_at,
    d.tier,
    d.billable_seconds,
    CASE
        WHEN b.pricing_model = 'per_minute' THEN CAST(d.tier_price_cents + coalesce(d.sensor_bonus_cents, 0) AS DOUBLE)
        WHEN r.billable_seconds > 0 THEN CAST(r.gross_cents AS DOUBLE) * 60.0 / CAST(r.billable_seconds AS DOUBLE)
    END AS realised_cents_per_minute
FROM deal_deliveries AS d
JOIN delivered_batches AS b USING (deal_id, batch_id)
LEFT JOIN batch_revenue AS r USING (deal_id, batch_id)
ORDER BY d.revenue_month, d.deal_id, d.batch_id, d.clip_id
