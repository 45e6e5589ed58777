-- Clip exclusion events, one row per clip and instant: the last event_id wins a tie, so
-- the state at t is the row with the greatest event_at <= t (R1b).
SELECT clip_id, subscriber_id, event_at, event_id, action
FROM clip_exclusions
QUALIFY row_number() OVER (PARTITION BY clip_id, event_at ORDER BY event_id DESC) = 1
ORDER BY clip_id, event_at
