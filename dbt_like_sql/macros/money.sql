-- Money macros shared by the SQL models. Money is integer cents; products are HUGEINT
-- so pool * weight cannot overflow (FIELD_NOTES: it passes int64 near 10^19).

-- round_half_up(n / d) for n >= 0, d > 0, exactly: floor((2n + d) / 2d).  (R7, R8)
-- Money here is never negative (checked by the models' non_negative tests); DuckDB's
-- integer division truncates, which equals floor only for non-negative operands.
CREATE OR REPLACE MACRO round_half_up_div(n, d) AS (2 * CAST(n AS HUGEINT) + d) // (2 * CAST(d AS HUGEINT));
