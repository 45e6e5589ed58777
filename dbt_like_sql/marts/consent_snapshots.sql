-- R1 / R1b point in time: each subscriber's consent state and eligibility as of the end
-- of each UTC day of the partition range, from the event log (never from current state).
WITH days AS (
    SELECT
        CAST(d AS DATE) AS snapshot_date,
        -- "as of the end of day D": the last microsecond of D, so event_at <= t holds
        -- exactly for the events of D and before
        d + INTERVAL 1 DAY - INTERVAL 1 MICROSECOND AS t
    FROM range(
        CAST(getvariable('range_start') AS TIMESTAMPTZ),
        CAST(getvariable('range_end') AS TIMESTAMPTZ) + INTERVAL 1 DAY,
        INTERVAL 1 DAY
    ) AS r(d)
),
grid AS (
    -- a subscriber has a snapshot from the day they subscribed
    SELECT s.subscriber_id, s.country, s.subscribed_at, s.cancelled_at, s.invited_at, d.snapshot_date, d.t
    FROM subscribers AS s
    JOIN days AS d ON s.subscribed_at <= d.t
),
state AS (
    SELECT g.*, c.action, c.excluded_buyers, c.enrolled_at, c.event_id
    FROM grid AS g
    ASOF LEFT JOIN int_consent_timeline AS c
        ON g.subscriber_id = c.subscriber_id AND g.t >= c.event_at
),
judged AS (
    SELECT
        *,
        ineligible_reason(country, subscribed_at, cancelled_at, invited_at, action, enrolled_at, t,
                          getvariable('review_days')) AS reason
    FROM state
)
SELECT
    snapshot_date,
    subscriber_id,
    coalesce(action = 'opt_in', false) AS opted_in,
    CASE WHEN action = 'opt_in' THEN excluded_buyers ELSE CAST([] AS VARCHAR[]) END AS excluded_buyers,
    reason IS NULL AS is_eligible,
    reason AS ineligible_reason,
    CASE WHEN action = 'opt_in' THEN enrolled_at END AS enrolled_at,
    event_id AS consent_event_id
FROM judged
ORDER BY snapshot_date, subscriber_id
