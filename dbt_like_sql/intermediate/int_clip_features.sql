-- Valuation features, one row per clip of the inventory (docs/VALUATION.md). Only what a
-- buyer can see in the clip itself or its upload row, plus the owner's tenure: nothing
-- here is derived from prices or revenue, so it cannot leak the valuation target. The
-- telemetry columns (R2b) are what the camera recorded: GPS, IMU, drone, camera model.
SELECT
    i.clip_id,
    i.subscriber_id,
    i.uploaded_at,
    i.tier,
    i.short_side_px,
    i.fps,
    i.duration_s,
    i.billable_seconds,
    coalesce(i.activity, 'none') AS activity,
    coalesce(i.mount, 'none') AS mount,
    i.published,
    i.height > i.width AS is_vertical,
    i.is_duplicate,
    -- R2b telemetry: what the camera knew (false without a readable telemetry track)
    coalesce(i.has_gps, false) AS has_gps,
    coalesce(i.has_imu, false) AS has_imu,
    coalesce(i.is_drone, false) AS is_drone,
    -- camera generation from camera_model: 'hero<N>' for a HERO<N>, 'max', 'fusion',
    -- 'other' for another model, 'unknown' without telemetry
    CASE
        WHEN i.camera_model IS NULL THEN 'unknown'
        WHEN regexp_matches(upper(i.camera_model), 'HERO\s*[0-9]+')
            THEN 'hero' || regexp_extract(upper(i.camera_model), 'HERO\s*([0-9]+)', 1)
        WHEN upper(i.camera_model) LIKE '%MAX%' THEN 'max'
        WHEN upper(i.camera_model) LIKE '%FUSION%' THEN 'fusion'
        ELSE 'other'
    END AS camera_generation,
    -- days the owner had been subscribed when the clip was uploaded (0 if the upload row
    -- predates the subscription, which ingestion does not forbid)
    CAST(greatest(date_diff('day', s.subscribed_at, i.uploaded_at), 0) AS BIGINT) AS owner_tenure_days
FROM footage_inventory AS i
LEFT JOIN subscribers AS s USING (subscriber_id)
ORDER BY i.clip_id
