-- R12: deliveries that today's knowledge would have excluded at their batch's cutoff.
-- History is not rewritten (deliveries are frozen); the late change is recorded here.
WITH d AS (
    SELECT dd.deal_id, dd.batch_id, dd.clip_id, dd.subscriber_id, dd.cutoff_at AS t, b.buyer_id
    FROM deal_deliveries AS dd
    JOIN delivered_batches AS b USING (deal_id, batch_id)
),
with_owner AS (
    SELECT d.*, s.country, s.subscribed_at, s.cancelled_at, s.invited_at,
           ct.action AS consent_action, ct.excluded_buyers, ct.enrolled_at, ct.event_id AS consent_event_id
    FROM d
    LEFT JOIN subscribers AS s ON s.subscriber_id = d.subscriber_id
    ASOF LEFT JOIN int_consent_timeline AS ct
        ON d.subscriber_id = ct.subscriber_id AND d.t >= ct.event_at
),
judged AS (
    SELECT w.*, x.action AS exclusion_action, x.event_id AS exclusion_event_id,
           ineligible_reason(w.country, w.subscribed_at, w.cancelled_at, w.invited_at, w.consent_action,
                             w.enrolled_at, w.t, getvariable('review_days')) AS owner_reason
    FROM with_owner AS w
    ASOF LEFT JOIN int_clip_exclusion_timeline AS x
        ON w.clip_id = x.clip_id AND w.t >= x.event_at
),
reasoned AS (
    -- one cause per delivery: a clip exclusion first, then the owner's first failing R1/R1b
    -- condition (subscriber row before consent state, the macro's order), then the buyer
    SELECT *,
        CASE
            WHEN exclusion_action = 'exclude' THEN 'clip_excluded'
            WHEN owner_reason IS NOT NULL THEN owner_reason
            WHEN coalesce(list_contains(excluded_buyers, buyer_id), false) THEN 'buyer_excluded'
        END AS reason
    FROM judged
)
SELECT
    deal_id, batch_id, clip_id, subscriber_id,
    CASE
        WHEN reason = 'clip_excluded' THEN exclusion_event_id
        WHEN reason IN ('not_opted_in', 'in_review_window', 'buyer_excluded') THEN consent_event_id
    END AS event_id,                                                  -- null for a subscriber-row change
    CASE
        WHEN reason = 'clip_excluded' THEN 'clip_exclusions'
        WHEN reason IN ('not_opted_in', 'in_review_window', 'buyer_excluded') THEN 'consent_events'
        ELSE 'subscribers'
    END AS source,
    reason,
    t AS cutoff_at
FROM reasoned
WHERE reason IS NOT NULL
ORDER BY deal_id, batch_id, clip_id
