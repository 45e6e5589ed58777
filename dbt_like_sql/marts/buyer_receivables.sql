-- R13 buyer side: per batch, gross_cents against the payments received. A payment_id
-- seen twice counts once (its first row); payments naming no delivered batch are
-- reported as unknown_batch with gross 0.
WITH payments AS (
    SELECT * FROM buyer_payments
    QUALIFY row_number() OVER (PARTITION BY payment_id ORDER BY _source_path, _source_line) = 1
),
received AS (
    SELECT deal_id, batch_id, sum(amount_cents) AS received_cents, count(*) AS payments
    FROM payments
    GROUP BY deal_id, batch_id
)
SELECT
    coalesce(r.deal_id, p.deal_id) AS deal_id,
    coalesce(r.batch_id, p.batch_id) AS batch_id,
    r.revenue_month,
    CAST(coalesce(r.gross_cents, 0) AS BIGINT) AS gross_cents,
    CAST(coalesce(p.received_cents, 0) AS BIGINT) AS received_cents,
    CAST(coalesce(p.received_cents, 0) - coalesce(r.gross_cents, 0) AS BIGINT) AS difference_cents,
    CAST(coalesce(p.payments, 0) AS BIGINT) AS payments,
    CASE
        WHEN r.batch_id IS NULL THEN 'unknown_batch'
        WHEN coalesce(p.received_cents, 0) = r.gross_cents THEN 'paid'
        WHEN coalesce(p.received_cents, 0) = 0 THEN 'unpaid'
        WHEN p.received_cents < r.gross_cents THEN 'partial'
        ELSE 'overpaid'
    END AS status
FROM batch_revenue AS r
FULL OUTER JOIN received AS p ON r.deal_id = p.deal_id AND r.batch_id = p.batch_id
ORDER BY deal_id, batch_id
