-- R1 / R1b as validity intervals (contract §5, like a dbt snapshot): for each subscriber,
-- one row per stretch of time over which their consent state and eligibility stay the
-- same. The state "as of t" is the row with valid_from <= t < valid_to (null: still valid).
--
-- A state can only change at an instant the inputs name: a consent event, subscribed_at,
-- cancelled_at, invited_at, or the end of a review window (enrolled_at + review_days,
-- known the moment the opt-in is). The state is judged at each of those instants and a row
-- starts where it differs from the one before, never otherwise. Before a subscriber's
-- first instant there is no row: not subscribed and not opted in, so not eligible.
--
-- Incremental (incremental_strategy merge): only the subscribers whose subscriber row or
-- consent events changed since the last run are judged (full_refresh: everyone); the
-- engine replaces their rows and leaves every other subscriber's rows and files alone.
WITH scope AS (
    SELECT subscriber_id FROM subscribers WHERE getvariable('full_refresh')
    UNION SELECT subscriber_id FROM subscribers__changed
    UNION SELECT subscriber_id FROM consent_events__changed
),
people AS (
    SELECT s.subscriber_id, s.country, s.subscribed_at, s.cancelled_at, s.invited_at
    FROM subscribers AS s
    SEMI JOIN scope USING (subscriber_id)
),
ordered AS (
    -- every opt-out starts a new enrolment period (R1b), counted in (event_at, event_id) order
    SELECT
        e.subscriber_id, e.event_id, e.event_at, e.action, coalesce(e.excluded_buyers, []) AS excluded_buyers,
        sum(CASE WHEN e.action = 'opt_out' THEN 1 ELSE 0 END) OVER (
            PARTITION BY e.subscriber_id ORDER BY e.event_at, e.event_id ROWS UNBOUNDED PRECEDING
        ) AS enrolment_period
    FROM consent_events AS e
    SEMI JOIN people USING (subscriber_id)
),
timeline AS (
    -- one row per subscriber and instant: the last event_id of an instant decides it (R1);
    -- enrolled_at: the first opt_in after the latest opt_out (R1b)
    SELECT
        subscriber_id, event_id, event_at, action, excluded_buyers,
        CASE WHEN action = 'opt_in' THEN
            min(CASE WHEN action = 'opt_in' THEN event_at END) OVER (PARTITION BY subscriber_id, enrolment_period)
        END AS enrolled_at
    FROM ordered
    QUALIFY row_number() OVER (PARTITION BY subscriber_id, event_at ORDER BY event_id DESC) = 1
),
instants AS (
    -- every instant at which a subscriber's state may change
    SELECT subscriber_id, event_at AS t FROM timeline
    UNION SELECT subscriber_id, subscribed_at FROM people WHERE subscribed_at IS NOT NULL
    UNION SELECT subscriber_id, cancelled_at FROM people WHERE cancelled_at IS NOT NULL
    UNION SELECT subscriber_id, invited_at FROM people WHERE invited_at IS NOT NULL
    UNION SELECT subscriber_id, enrolled_at + to_days(CAST(getvariable('review_days') AS INTEGER))
          FROM timeline WHERE enrolled_at IS NOT NULL                                     -- R1b
),
states AS (
    -- the consent state at each instant: the last event with event_at <= t (R1)
    SELECT i.subscriber_id, i.t, p.country, p.subscribed_at, p.cancelled_at, p.invited_at,
           c.action, c.excluded_buyers, c.enrolled_at, c.event_id
    FROM instants AS i
    JOIN people AS p USING (subscriber_id)
    ASOF LEFT JOIN timeline AS c
        ON i.subscriber_id = c.subscriber_id AND i.t >= c.event_at
),
judged AS (
    SELECT
        subscriber_id,
        t,
        coalesce(action = 'opt_in', false) AS opted_in,
        CASE WHEN action = 'opt_in' THEN excluded_buyers ELSE CAST([] AS VARCHAR[]) END AS excluded_buyers,
        CASE WHEN action = 'opt_in' THEN enrolled_at END AS enrolled_at,
        ineligible_reason(country, subscribed_at, cancelled_at, invited_at, action, enrolled_at, t,
                          getvariable('review_days')) AS ineligible_reason,                  -- R1, R1b
        event_id
    FROM states
),
starts AS (
    -- a row starts where any column of the state differs from the instant before
    SELECT *
    FROM judged
    WINDOW w AS (PARTITION BY subscriber_id ORDER BY t)
    QUALIFY row_number() OVER w = 1
         OR opted_in IS DISTINCT FROM lag(opted_in) OVER w
         OR excluded_buyers IS DISTINCT FROM lag(excluded_buyers) OVER w
         OR enrolled_at IS DISTINCT FROM lag(enrolled_at) OVER w
         OR ineligible_reason IS DISTINCT FROM lag(ineligible_reason) OVER w
)
SELECT
    subscriber_id,
    t AS valid_from,
    lead(t) OVER (PARTITION BY subscriber_id ORDER BY t) AS valid_to,
    opted_in,
    excluded_buyers,
    enrolled_at,
    ineligible_reason IS NULL AS is_eligible,
    ineligible_reason,
    event_id AS consent_event_id,
    lead(t) OVER (PARTITION BY subscriber_id ORDER BY t) IS NULL AS is_current,
    -- the Delta partition: the UTC month the row ends in, 'open' while it has no end
    coalesce(strftime(lead(t) OVER (PARTITION BY subscriber_id ORDER BY t) AT TIME ZONE 'UTC', '%Y-%m'), 'open')
        AS valid_to_month
FROM starts
ORDER BY subscriber_id, valid_from
