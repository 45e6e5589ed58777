-- Independent re-judgement of one delivered batch (R1, R1b, R5) straight from the raw
-- event logs, written without the eligibility macro or ASOF joins so that a mistake in
-- one formulation shows up against the other. Returns the deliveries that fail.
-- Variables: deal_id, batch_id, cutoff_at, buyer_id, review_days.
WITH d AS (
    SELECT clip_id, subscriber_id
    FROM deal_deliveries
    WHERE deal_id = getvariable('deal_id') AND batch_id = getvariable('batch_id')
),
cut AS (SELECT CAST(getvariable('cutoff_at') AS TIMESTAMPTZ) AS t),
events AS (
    SELECT e.*, row_number() OVER (PARTITION BY e.subscriber_id ORDER BY e.event_at DESC, e.event_id DESC) AS recency
    FROM consent_events AS e, cut
    WHERE e.event_at <= cut.t AND e.subscriber_id IN (SELECT subscriber_id FROM d)
),
last_event AS (SELECT * FROM events WHERE recency = 1),
last_opt_out AS (
    SELECT subscriber_id, min(recency) AS recency FROM events WHERE action = 'opt_out' GROUP BY subscriber_id
),
enrolment AS (
    -- the first opt_in after the latest opt_out: the opt_in with the largest recency
    -- number that is still more recent than that opt_out
    SELECT e.subscriber_id, arg_max(e.event_at, e.recency) AS enrolled_at
    FROM events AS e LEFT JOIN last_opt_out AS o USING (subscriber_id)
    WHERE e.action = 'opt_in' AND (o.recency IS NULL OR e.recency < o.recency)
    GROUP BY e.subscriber_id
),
clip_state AS (
    SELECT x.clip_id, arg_max(x.action, (x.event_at, x.event_id)) AS action
    FROM clip_exclusions AS x, cut
    WHERE x.event_at <= cut.t AND x.clip_id IN (SELECT clip_id FROM d)
    GROUP BY x.clip_id
)
SELECT d.clip_id, d.subscriber_id, s.country, le.action AS consent_action, le.excluded_buyers, en.enrolled_at, cs.action AS clip_action
FROM d
CROSS JOIN cut
LEFT JOIN subscribers AS s ON s.subscriber_id = d.subscriber_id
LEFT JOIN last_event AS le ON le.subscriber_id = d.subscriber_id
LEFT JOIN enrolment AS en ON en.subscriber_id = d.subscriber_id
LEFT JOIN clip_state AS cs ON cs.clip_id = d.clip_id
WHERE s.subscriber_id IS NULL
   OR s.country <> 'US'
   OR s.subscribed_at > cut.t
   OR (s.cancelled_at IS NOT NULL AND s.cancelled_at <= cut.t)
   OR s.invited_at IS NULL OR s.invited_at > cut.t
   OR le.action IS DISTINCT FROM 'opt_in'
   OR list_contains(coalesce(le.excluded_buyers, []), getvariable('buyer_id'))
   OR en.enrolled_at IS NULL
   OR en.enrolled_at + to_days(CAST(getvariable('review_days') AS INTEGER)) > cut.t
   OR cs.action = 'exclude'
