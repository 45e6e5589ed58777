-- The analysts' daily view of consent (contract §5): per UTC day of the partition range,
-- how many subscribers are in each eligibility state as of the end of the day (its last
-- microsecond), counted from the consent_snapshots interval holding that instant.
-- A subscriber appears from their first interval (the earliest of subscribed_at and
-- their first consent event).
WITH days AS (
    SELECT
        CAST(d AS DATE) AS snapshot_date,
        d + INTERVAL 1 DAY - INTERVAL 1 MICROSECOND AS t
    FROM range(
        CAST(getvariable('range_start') AS TIMESTAMPTZ),
        CAST(getvariable('range_end') AS TIMESTAMPTZ) + INTERVAL 1 DAY,
        INTERVAL 1 DAY
    ) AS r(d)
)
SELECT
    d.snapshot_date,
    c.is_eligible,
    c.ineligible_reason,
    count(*) AS subscribers
FROM days AS d
JOIN consent_snapshots AS c
    ON c.valid_from <= d.t AND (c.valid_to IS NULL OR c.valid_to > d.t)
GROUP BY d.snapshot_date, c.is_eligible, c.ineligible_reason
ORDER BY d.snapshot_date, c.is_eligible DESC, c.ineligible_reason
