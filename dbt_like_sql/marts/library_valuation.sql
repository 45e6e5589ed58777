-- The library's estimated value by tier x activity x consent state, as of the end of the
-- run's day (the consent_snapshots row holding that instant), and the opt-in upside: the
-- value of footage whose owners would be eligible if they opted in, and how much of it is
-- footage with GPS and IMU telemetry (docs/VALUATION.md).
-- Estimates from clip_valuations (a model), never money owed.
WITH snapshot_day AS (
    -- as_of is the end of the run's day D (D+1 00:00 UTC): the state as of D's last microsecond
    SELECT CAST(getvariable('as_of') AS TIMESTAMPTZ) - INTERVAL 1 MICROSECOND AS t,
           CAST(CAST(getvariable('as_of') AS TIMESTAMPTZ) - INTERVAL 1 MICROSECOND AS DATE) AS snapshot_date
),
owners AS (
    SELECT c.subscriber_id, c.is_eligible, c.ineligible_reason, d.snapshot_date, d.t
    FROM consent_snapshots AS c, snapshot_day AS d
    WHERE c.valid_from <= d.t AND (c.valid_to IS NULL OR c.valid_to > d.t)
),
clips AS (
    SELECT f.clip_id, f.subscriber_id, f.tier, f.activity, f.billable_seconds, f.is_duplicate, f.uploaded_at,
           f.has_gps AND f.has_imu AS has_gps_imu,
           v.predicted_value_cents, v.model_version,
           o.is_eligible, o.ineligible_reason, o.t,
           (SELECT snapshot_date FROM snapshot_day) AS snapshot_date
    FROM int_clip_features AS f
    JOIN clip_valuations AS v USING (clip_id)
    LEFT JOIN owners AS o USING (subscriber_id)
),
judged AS (
    SELECT c.*, x.action AS exclusion_action
    FROM clips AS c
    ASOF LEFT JOIN int_clip_exclusion_timeline AS x
        ON c.clip_id = x.clip_id AND c.t >= x.event_at
),
states AS (
    SELECT
        *,
        CASE
            WHEN is_duplicate THEN 'duplicate'                                         -- R4: never licensed
            WHEN t IS NULL OR uploaded_at > t THEN 'ineligible'                        -- no snapshot for the owner
            WHEN ineligible_reason = 'not_opted_in' THEN 'not_opted_in'                -- US, invited, subscribed: the upside
            WHEN ineligible_reason = 'in_review_window' THEN 'opted_in_in_review_or_excluded'
            WHEN ineligible_reason IS NOT NULL THEN 'ineligible'                       -- not_us, not_invited, cancelled, ...
            WHEN coalesce(exclusion_action, 'include') = 'exclude' THEN 'opted_in_in_review_or_excluded'
            ELSE 'licensable_now'
        END AS consent_state
    FROM judged
)
SELECT
    snapshot_date,
    tier,
    activity,
    consent_state,
    count(*) AS clips,
    count(DISTINCT subscriber_id) AS owners,
    CAST(sum(billable_seconds) AS BIGINT) AS billable_seconds,
    sum(predicted_value_cents) AS predicted_value_cents,
    sum(CASE WHEN consent_state = 'not_opted_in' THEN predicted_value_cents ELSE 0 END) AS opt_in_upside_cents,
    -- what telemetry adds (R2b, R7's sensor bonus): the cell's clips with GPS and IMU, and
    -- their share of the value and of the opt-in upside (the rest is footage without them)
    count(*) FILTER (WHERE has_gps_imu) AS gps_imu_clips,
    coalesce(sum(predicted_value_cents) FILTER (WHERE has_gps_imu), 0) AS gps_imu_value_cents,
    coalesce(sum(predicted_value_cents) FILTER (WHERE has_gps_imu AND consent_state = 'not_opted_in'), 0)
        AS opt_in_upside_gps_imu_cents,
    min(model_version) AS model_version
FROM states
GROUP BY snapshot_date, tier, activity, consent_state
ORDER BY tier, activity, consent_state
