-- R1 / R1b eligibility of a subscriber at instant t, as the FIRST failing condition in a
-- fixed order (NULL = eligible). Buyer exclusions (R1, excluded_buyers) are per buyer and
-- are tested by the caller with list_contains(excluded_buyers, buyer_id).
--   consent_action / enrolled_at: the subscriber's consent state at t (the last event
--   with event_at <= t by (event_at, event_id)) and its enrolment instant; NULL before any
--   event. consent_snapshots.sql calls it at every instant where the state may change.
CREATE OR REPLACE MACRO ineligible_reason(country, subscribed_at, cancelled_at, invited_at, consent_action, enrolled_at, t, review_days) AS
    CASE
        WHEN country IS DISTINCT FROM 'US' THEN 'not_us'
        WHEN subscribed_at > t THEN 'not_yet_subscribed'
        WHEN cancelled_at IS NOT NULL AND cancelled_at <= t THEN 'cancelled'
        WHEN invited_at IS NULL OR invited_at > t THEN 'not_invited'
        WHEN consent_action IS DISTINCT FROM 'opt_in' THEN 'not_opted_in'
        -- R1b: nothing is licensable until enrolled_at + review_days <= t
        WHEN enrolled_at + to_days(CAST(review_days AS INTEGER)) > t THEN 'in_review_window'
    END;
