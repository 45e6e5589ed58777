-- R12: deliveries that today's knowledge would have excluded at their batch's cutoff.
-- History is not rewritten (deliveries are frozen); the late change is recorded here.
--
-- Incremental (the `incremental` block of the .yml; docs/PERFORMANCE.md): a delivery's
-- verdict depends only on its owner's subscriber row and consent intervals, its clip's
-- exclusion timeline and its batch. `<input>__changed` holds the keys whose rows of that
-- input differ from the input as of this table's last computation, so only the
-- deliveries touching one of them are re-judged and every other row is kept as it was.
-- `full_refresh` re-judges everything (first run, changed SQL or settings, history gone).
WITH changed_batches AS (
    SELECT DISTINCT deal_id, batch_id FROM delivered_batches__changed
),
d AS (
    SELECT dd.deal_id, dd.batch_id, dd.clip_id, dd.subscriber_id, dd.cutoff_at AS t, b.buyer_id
    FROM deal_deliveries AS dd
    JOIN delivered_batches AS b USING (deal_id, batch_id)
    -- a batch's deliveries never change once its delivered_batches row exists (R12 freeze;
    -- deliver_batch writes them first), so a new batch shows as a changed batch row
    LEFT JOIN changed_batches AS cb USING (deal_id, batch_id)
    WHERE getvariable('full_refresh')
       OR cb.deal_id IS NOT NULL
       OR dd.subscriber_id IN (SELECT subscriber_id FROM subscribers__changed)
       OR dd.subscriber_id IN (SELECT subscriber_id FROM consent_snapshots__changed)
       OR dd.clip_id IN (SELECT clip_id FROM int_clip_exclusion_timeline__changed)
),
owners AS (
    -- R1/R1b depend on the owner, the cutoff and the buyer only, so they are judged once per
    -- (owner, batch cutoff, buyer) rather than once per delivered clip: the owner's state as
    -- of the cutoff is the consent_snapshots interval holding it. Before a subscriber's first
    -- interval there is none: the macro judges the subscriber row alone (no consent event).
    SELECT p.subscriber_id, p.t, p.buyer_id, c.consent_event_id,
           CASE WHEN c.subscriber_id IS NULL
                THEN ineligible_reason(s.country, s.subscribed_at, s.cancelled_at, s.invited_at, CAST(NULL AS VARCHAR),
                                       CAST(NULL AS TIMESTAMPTZ), p.t,
                                       getvariable('review_days'))
                ELSE c.ineligible_reason
           END AS owner_reason,
           coalesce(list_contains(c.excluded_buyers, p.buyer_id), false) AS excluded_buyer
    FROM (SELECT DISTINCT subscriber_id, t, buyer_id FROM d) AS p
    LEFT JOIN subscribers AS s ON s.subscriber_id = p.subscriber_id
    LEFT JOIN consent_snapshots AS c
        ON c.subscriber_id = p.subscriber_id AND c.valid_from <= p.t AND (c.valid_to IS NULL OR c.valid_to > p.t)
),
flagged_owners AS (
    SELECT * FROM owners WHERE owner_reason IS NOT NULL OR excluded_buyer
),
excluded_clips AS (
    -- R1b: only a clip with exclusion events can have been excluded at its cutoff
    SELECT DISTINCT e.deal_id, e.batch_id, e.clip_id, e.t, x.action AS exclusion_action, x.event_id AS exclusion_event_id
    FROM (SELECT DISTINCT deal_id, batch_id, clip_id, t FROM d
          WHERE clip_id IN (SELECT clip_id FROM int_clip_exclusion_timeline)) AS e
    ASOF LEFT JOIN int_clip_exclusion_timeline AS x
        ON e.clip_id = x.clip_id AND e.t >= x.event_at
    WHERE x.action = 'exclude'
),
reasoned AS (
    -- one cause per delivery: a clip exclusion first, then the owner's first failing R1/R1b
    -- condition (subscriber row before consent state, the macro's order), then the buyer
    SELECT d.*, o.consent_event_id, x.exclusion_event_id,
        CASE
            WHEN x.exclusion_action = 'exclude' THEN 'clip_excluded'
            WHEN o.owner_reason IS NOT NULL THEN o.owner_reason
            WHEN o.excluded_buyer THEN 'buyer_excluded'
        END AS reason
    FROM d
    LEFT JOIN flagged_owners AS o
        ON o.subscriber_id IS NOT DISTINCT FROM d.subscriber_id AND o.t IS NOT DISTINCT FROM d.t
       AND o.buyer_id IS NOT DISTINCT FROM d.buyer_id
    LEFT JOIN excluded_clips AS x
        ON x.deal_id IS NOT DISTINCT FROM d.deal_id AND x.batch_id IS NOT DISTINCT FROM d.batch_id
       AND x.clip_id IS NOT DISTINCT FROM d.clip_id AND x.t IS NOT DISTINCT FROM d.t
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
UNION ALL
-- the rows of the deliveries not re-judged, as the last computation left them
SELECT kept.deal_id, kept.batch_id, kept.clip_id, kept.subscriber_id, kept.event_id, kept.source, kept.reason,
       kept.cutoff_at
FROM late_revocations AS kept
ANTI JOIN d USING (deal_id, batch_id, clip_id)
WHERE NOT getvariable('full_refresh')
ORDER BY deal_id, batch_id, clip_id
