-- Eligibility: the projection's writers work in parallel (issue 14). Additive, idempotent DDL.
--
-- Students fall into 16 partitions by a stable hash of their id (eligibility_part; the writer computes
-- the same in Python: services/eligibility/projection/writer.py, partition()). A per-student batch holds
-- the shared-facts lock (advisory 727104) in SHARED mode and the advisory locks (727105, partition) of
-- the partitions it touches; a batch that writes shared facts holds 727104 exclusively. The
-- re-derivation backlog after a province-wide event is kept per partition (eligibility_backlog), so
-- several instances re-derive different partitions at once.

CREATE OR REPLACE FUNCTION eligibility_part(student_id text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
    SELECT get_byte(decode(md5(student_id), 'hex'), 0) % 16
$$;

CREATE INDEX IF NOT EXISTS eligibility_facts_part_idx
    ON eligibility_facts (eligibility_part(student_id), student_id);
CREATE INDEX IF NOT EXISTS eligibility_roster_entries_part_idx
    ON eligibility_roster_entries (eligibility_part(student_id), student_id);

-- One row per partition still to re-derive: every student of the partition after ``after`` (student-id
-- order). The backlog runs while eligibility_meta holds 'rederive_after' (kept for the tools that poll it).
CREATE TABLE IF NOT EXISTS eligibility_backlog (
    part  integer PRIMARY KEY,
    after text,                        -- NULL: the partition is done
    done  bigint  NOT NULL DEFAULT 0
);

-- The summary counts under concurrent writers: the statement triggers of 0102 update shared counter rows
-- (a school's, a month's), which two transactions would otherwise lock in different orders (deadlock).
-- Each trigger run that has rows to count first takes the counts' advisory lock (727106), held until
-- commit: the writers derive in parallel and take turns only to write their counts. The deltas are applied
-- in key order.
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
    PERFORM pg_advisory_xact_lock(727106);
    IF TG_OP = 'INSERT' THEN
        INSERT INTO eligibility_counts AS c (semester, month, school_id, county, city, metric, n)
        SELECT r.semester, x.month, coalesce(r.school_id, ''), coalesce(r.county, ''), coalesce(r.city, ''),
               x.metric, sum(x.v)
          FROM new_rows r, eligibility_contrib(r.status) x
         GROUP BY 1, 2, 3, 4, 5, 6
         ORDER BY 1, 2, 3, 4, 5, 6
        ON CONFLICT (semester, month, school_id, county, city, metric) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO eligibility_counts AS c (semester, month, school_id, county, city, metric, n)
        SELECT r.semester, x.month, coalesce(r.school_id, ''), coalesce(r.county, ''), coalesce(r.city, ''),
               x.metric, -sum(x.v)
          FROM old_rows r, eligibility_contrib(r.status) x
         GROUP BY 1, 2, 3, 4, 5, 6
         ORDER BY 1, 2, 3, 4, 5, 6
        ON CONFLICT (semester, month, school_id, county, city, metric) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSE
        INSERT INTO eligibility_counts AS c (semester, month, school_id, county, city, metric, n)
        SELECT semester, month, school_id, county, city, metric, sum(v) FROM (
            SELECT r.semester, x.month, coalesce(r.school_id, '') AS school_id, coalesce(r.county, '') AS county,
                   coalesce(r.city, '') AS city, x.metric, x.v
              FROM new_rows r, eligibility_contrib(r.status) x
            UNION ALL
            SELECT r.semester, x.month, coalesce(r.school_id, ''), coalesce(r.county, ''), coalesce(r.city, ''),
                   x.metric, -x.v
              FROM old_rows r, eligibility_contrib(r.status) x
        ) d
         GROUP BY 1, 2, 3, 4, 5, 6
        HAVING sum(v) <> 0
         ORDER BY 1, 2, 3, 4, 5, 6
        ON CONFLICT (semester, month, school_id, county, city, metric) DO UPDATE SET n = c.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END
$$;

-- A backlog running when this migration is applied (one cursor, 0101/0102) goes on partition by partition,
-- from the first student.
INSERT INTO eligibility_backlog (part, after)
SELECT p, '' FROM generate_series(0, 15) AS p
 WHERE EXISTS (SELECT 1 FROM eligibility_meta WHERE key = 'rederive_after')
ON CONFLICT (part) DO NOTHING;
