-- Clip exclusion events, one row per clip and instant: the last event_id wins a tie, so
-- the state at t is the row with the greatest event_at <= t (R1b).
-- Incremental (incremental_strategy merge): only the clips with new or changed exclusion
-- events since the last run are rebuilt (full_refresh: every clip).
SELECT x.clip_id, x.subscriber_id, x.event_at, x.event_id, x.action
FROM clip_exclusions AS x
WHERE getvariable('full_refresh') OR x.clip_id IN (SELECT clip_id FROM clip_exclusions__changed)
QUALIFY row_number() OVER (PARTITION BY x.clip_id, x.event_at ORDER BY x.event_id DESC) = 1
ORDER BY x.clip_id, x.event_at
