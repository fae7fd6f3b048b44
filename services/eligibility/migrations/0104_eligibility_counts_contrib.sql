-- Eligibility: cheaper summary counts on writes (issue 14). Additive, idempotent DDL.
--
-- The count triggers of 0102/0103 took apart every old and new status (jsonb) of a statement with
-- eligibility_contrib: the largest cost of writing a batch (about 2/3 of the status write). The writer now
-- stores, beside each status, what it contributes to the counts: ``contrib``, entries "month<US>metric<US>n"
-- joined by <RS> (chr(31), chr(30)), computed in Python (projection/writer.py, contrib()); the triggers read
-- that small text, let an old row and its new one cancel out when they contribute the same, and fall back
-- on eligibility_contrib(status) for a row without it (written before this migration, or by a COPY).

ALTER TABLE eligibility_status ADD COLUMN IF NOT EXISTS contrib text;

-- What one status row contributes, from ``contrib`` when there is one.
CREATE OR REPLACE FUNCTION eligibility_row_contrib(s jsonb, contrib text)
RETURNS TABLE (month text, metric text, v bigint)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT split_part(e, chr(31), 1), split_part(e, chr(31), 2), split_part(e, chr(31), 3)::bigint
      FROM string_to_table(contrib, chr(30)) AS e
     WHERE contrib IS NOT NULL
    UNION ALL
    SELECT c.month, c.metric, c.v FROM eligibility_contrib(s) AS c WHERE contrib IS NULL
$$;

CREATE OR REPLACE FUNCTION eligibility_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM 1 FROM new_rows LIMIT 1;
    ELSE
        PERFORM 1 FROM old_rows LIMIT 1;
    END IF;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock(727106);  -- see 0103: counter rows are updated in turn
    IF TG_OP = 'INSERT' THEN
        INSERT INTO eligibility_counts AS c (semester, month, school_id, county, city, metric, n)
        SELECT r.semester, x.month, coalesce(r.school_id, ''), coalesce(r.county, ''), coalesce(r.city, ''),
               x.metric, sum(x.v)
          FROM new_rows r, eligibility_row_contrib(r.status, r.contrib) x
         GROUP BY 1, 2, 3, 4, 5, 6
         ORDER BY 1, 2, 3, 4, 5, 6
        ON CONFLICT (semester, month, school_id, county, city, metric) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO eligibility_counts AS c (semester, month, school_id, county, city, metric, n)
        SELECT r.semester, x.month, coalesce(r.school_id, ''), coalesce(r.county, ''), coalesce(r.city, ''),
               x.metric, -sum(x.v)
          FROM old_rows r, eligibility_row_contrib(r.status, r.contrib) x
         GROUP BY 1, 2, 3, 4, 5, 6
         ORDER BY 1, 2, 3, 4, 5, 6
        ON CONFLICT (semester, month, school_id, county, city, metric) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSE
        -- an old row and its new row that contribute the same (same contrib, school, county and city) cancel
        -- out before anything is taken apart (a hash aggregate; most rows of a batch change no count)
        INSERT INTO eligibility_counts AS c (semester, month, school_id, county, city, metric, n)
        SELECT d.semester, x.month, coalesce(d.school_id, ''), coalesce(d.county, ''), coalesce(d.city, ''),
               x.metric, sum(x.v * d.sign)
          FROM (SELECT u.semester, u.school_id, u.county, u.city, u.contrib, u.s, sum(u.sign) AS sign
                  FROM (SELECT r.student_id, r.semester, r.school_id, r.county, r.city, r.contrib,
                               CASE WHEN r.contrib IS NULL THEN r.status END AS s, 1 AS sign
                          FROM new_rows r
                        UNION ALL
                        SELECT r.student_id, r.semester, r.school_id, r.county, r.city, r.contrib,
                               CASE WHEN r.contrib IS NULL THEN r.status END, -1
                          FROM old_rows r) u
                 GROUP BY u.student_id, u.semester, u.school_id, u.county, u.city, u.contrib, u.s
                HAVING sum(u.sign) <> 0) d,
               eligibility_row_contrib(d.s, d.contrib) x
         GROUP BY 1, 2, 3, 4, 5, 6
        HAVING sum(x.v * d.sign) <> 0
         ORDER BY 1, 2, 3, 4, 5, 6
        ON CONFLICT (semester, month, school_id, county, city, metric) DO UPDATE SET n = c.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END
$$;
