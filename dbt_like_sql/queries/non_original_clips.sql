-- R4 over the WHOLE inventory: the clip ids that are never the original of their content,
-- i.e. the complement of "clips with no fingerprint or the first upload of their
-- fingerprint (by uploaded_at, then clip_id)". Judged here and not only from the stored
-- is_duplicate flag: a partition run flags the clips it writes, and a late-arriving,
-- earlier upload of the same file must win even where an old flag says otherwise.
-- It depends on the inventory alone, so deliveries compute it once per inventory version
-- and clips_eligible_at_cutoff.sql / recordings_at_cutoff.sql read the result as `non_original_clips`.
-- Only fingerprints seen more than once are ranked (a cheap GROUP BY, then a window over
-- the few copies instead of over the whole library).
WITH shared AS (
    SELECT fingerprint
    FROM footage_inventory
    WHERE fingerprint IS NOT NULL
    GROUP BY fingerprint
    HAVING count(*) > 1
),
ranked AS (
    SELECT clip_id, row_number() OVER (PARTITION BY fingerprint ORDER BY uploaded_at, clip_id) AS copy_number
    FROM footage_inventory
    WHERE fingerprint IN (SELECT fingerprint FROM shared)
),
later_copies AS (
    SELECT DISTINCT clip_id FROM ranked WHERE copy_number > 1
)
-- a clip id with a later-copy row is still an original if another of its rows is one
-- (a clip id stored twice): only ids whose every row is a later copy are excluded
SELECT clip_id FROM later_copies
EXCEPT
SELECT clip_id FROM ranked WHERE copy_number = 1
EXCEPT
SELECT i.clip_id
FROM footage_inventory AS i
WHERE i.clip_id IN (SELECT clip_id FROM later_copies)
  AND (i.fingerprint IS NULL OR i.fingerprint NOT IN (SELECT fingerprint FROM shared))
