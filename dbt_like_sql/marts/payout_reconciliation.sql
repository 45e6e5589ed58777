-- R13 contributor side for one statement month: payable_cents against the payouts
-- made. A payout_id seen more than once makes its line `duplicate` (it is counted once
-- in paid_cents, at its first occurrence in file order); a payout with no payable
-- statement is `unexpected`. Copies are counted over ALL payouts, not just this month's:
-- the same payout_id filed under two statement months is a duplicate too, and only its
-- first occurrence counts as paid (docs/MONEY_CHOICES.md).
WITH all_payouts AS (
    SELECT *,
        count(*) OVER (PARTITION BY payout_id) AS copies,
        row_number() OVER (PARTITION BY payout_id ORDER BY _source_path, _source_line) AS copy_number
    FROM payouts
),
month_payouts AS (
    SELECT * FROM all_payouts
    -- payouts for months before the first partition reconcile in the first month (contract §1)
    WHERE greatest(statement_month, getvariable('first_month')) = getvariable('month')
),
paid AS (
    SELECT
        subscriber_id,
        sum(CASE WHEN copy_number = 1 THEN amount_cents ELSE 0 END) AS paid_cents,
        count(DISTINCT payout_id) AS payouts,
        max(copies) > 1 AS has_duplicate
    FROM month_payouts
    GROUP BY subscriber_id
),
payable AS (
    SELECT subscriber_id, payable_cents
    FROM revenue_share_statements
    WHERE statement_month = getvariable('month') AND payable_cents > 0
)
SELECT
    getvariable('month') AS statement_month,
    coalesce(s.subscriber_id, p.subscriber_id) AS subscriber_id,
    CAST(coalesce(s.payable_cents, 0) AS BIGINT) AS payable_cents,
    CAST(coalesce(p.paid_cents, 0) AS BIGINT) AS paid_cents,
    CAST(coalesce(p.paid_cents, 0) - coalesce(s.payable_cents, 0) AS BIGINT) AS difference_cents,
    CAST(coalesce(p.payouts, 0) AS BIGINT) AS payouts,
    CASE
        WHEN coalesce(p.has_duplicate, false) THEN 'duplicate'
        WHEN s.subscriber_id IS NULL THEN 'unexpected'
        WHEN coalesce(p.paid_cents, 0) = s.payable_cents THEN 'matched'
        WHEN coalesce(p.paid_cents, 0) = 0 THEN 'unpaid'
        WHEN p.paid_cents < s.payable_cents THEN 'underpaid'
        ELSE 'overpaid'
    END AS status
FROM payable AS s
FULL OUTER JOIN paid AS p ON s.subscriber_id = p.subscriber_id
ORDER BY subscriber_id
