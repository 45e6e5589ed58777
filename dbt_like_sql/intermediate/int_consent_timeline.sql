-- The consent event log in (event_at, event_id) order, one row per subscriber and
-- instant (the last event_id wins a tie, R1), with the enrolment instant of R1b: the
-- first opt_in after the latest opt_out (or the first opt_in ever).
WITH ordered AS (
    SELECT
        subscriber_id, event_id, event_at, action, excluded_buyers,
        -- opt-outs so far: every opt-out starts a new enrolment period
        sum(CASE WHEN action = 'opt_out' THEN 1 ELSE 0 END) OVER (
            PARTITION BY subscriber_id ORDER BY event_at, event_id ROWS UNBOUNDED PRECEDING
        ) AS enrolment_period
    FROM consent_events
),
enrolled AS (
    SELECT
        *,
        CASE WHEN action = 'opt_in' THEN
            min(CASE WHEN action = 'opt_in' THEN event_at END) OVER (PARTITION BY subscriber_id, enrolment_period)
        END AS enrolled_at
    FROM ordered
)
SELECT subscriber_id, event_at, event_id, action, coalesce(excluded_buyers, []) AS excluded_buyers, enrolled_at
FROM enrolled
QUALIFY row_number() OVER (PARTITION BY subscriber_id, event_at ORDER BY event_id DESC) = 1
ORDER BY subscriber_id, event_at
