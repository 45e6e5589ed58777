-- R6/R15, for the deals with whole_recordings: each recording with a chapter in
-- `clips_eligible_at_cutoff` (that query's result at the same cutoff), as of the cutoff.
-- It depends on no deal, so deliveries run it at most once per cutoff (and input
-- versions), and only when a batch with that cutoff sells whole recordings; licensable_clips.sql
-- reads it as `recordings_at_cutoff`.
-- Variables: cutoff_at. `non_original_clips` as in clips_eligible_at_cutoff.sql.
WITH counted_chapters AS (
    -- the chapters uploaded by the cutoff that count: in the inventory (so probed and not
    -- quarantined) and not duplicates (R4), whoever may license them
    SELECT i.recording_id, i.chapter, i.clip_id, i.duration_s, i.uploaded_at,
           CASE i.tier WHEN 'aerial' THEN 4 WHEN 'uhd' THEN 3 WHEN 'hd' THEN 2 ELSE 1 END AS tier_rank
    FROM footage_inventory AS i
    WHERE i.recording_id IN (SELECT recording_id FROM clips_eligible_at_cutoff)
      AND NOT i.is_duplicate
      AND i.clip_id NOT IN (SELECT clip_id FROM non_original_clips)
      AND i.uploaded_at <= CAST(getvariable('cutoff_at') AS TIMESTAMPTZ)
)
SELECT recording_id,
       count(*) AS chapters,
       -- complete as of the cutoff: the counted chapters are exactly 1..n, each once (R15)
       count(*) = count(DISTINCT chapter) AND min(chapter) = 1 AND max(chapter) = count(*) AS complete,
       -- summed in chapter order: the same float on every run (as footage_recordings.sql)
       list_sum(list(duration_s ORDER BY chapter, clip_id)) AS recording_duration_s,
       min(tier_rank) FILTER (WHERE chapter = 1) AS first_tier_rank,
       min(uploaded_at) FILTER (WHERE chapter = 1) AS first_uploaded_at
FROM counted_chapters
GROUP BY recording_id
