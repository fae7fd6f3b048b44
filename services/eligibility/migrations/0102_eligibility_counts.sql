-- Eligibility: summary counts kept up to date as statuses change, so that a summary (province, city,
-- county, school) reads a few thousand small rows instead of scanning every status row.
--
-- eligibility_counts holds, per (semester, month, school, county, city), one row per metric:
--   month '*'  : students            (status rows of the semester)
--   month 'YYYY-MM': checked, passed, failed, pending, grant_granted, grant_yuan, grant_pending,
--                    grant_withheld, and 'withheld:<first rule>' per reason
-- exactly what projection/queries.py's province_summary counts. Statement-level triggers with transition
-- tables add what the new rows contribute and subtract what the old rows contributed, once per statement
-- (a projection batch writes its statuses in a few statements). Writers hold the projection's advisory
-- lock, so the counter rows are never updated concurrently. TRUNCATE does not fire them: rebuild()
-- truncates eligibility_counts with eligibility_status.

CREATE TABLE IF NOT EXISTS eligibility_counts (
    semester  text   NOT NULL,
    month     text   NOT NULL,
    school_id text   NOT NULL,              -- '' when the status has none
    county    text   NOT NULL,
    city      text   NOT NULL,
    metric    text   NOT NULL,
    n         bigint NOT NULL,
    PRIMARY KEY (semester, month, school_id, county, city, metric)
);

-- What one status row contributes: (month, metric, value) rows.
CREATE OR REPLACE FUNCTION eligibility_contrib(s jsonb) RETURNS TABLE (month text, metric text, v bigint)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT '*'::text, 'students'::text, 1::bigint
    UNION ALL
    SELECT m->>'month', x.metric, 1::bigint
      FROM jsonb_array_elements(coalesce(s->'months', '[]'::jsonb)) AS m,
           LATERAL (VALUES ('checked', coalesce(jsonb_array_length(m->'checks'), 0) > 0),
                           ('passed', m->>'outcome' = 'passed'),
                           ('failed', m->>'outcome' = 'failed'),
                           ('pending', m->>'outcome' = 'pending')) AS x(metric, ok)
     WHERE x.ok
    UNION ALL
    SELECT g->>'month', x.metric, x.v
      FROM jsonb_array_elements(coalesce(s->'grant', '[]'::jsonb)) AS g,
           LATERAL (VALUES
               ('grant_granted', CASE WHEN g->>'decision' = 'granted' THEN 1 END),
               ('grant_yuan', CASE WHEN g->>'decision' = 'granted' THEN coalesce((g->>'amount_yuan')::int, 0) END),
               ('grant_pending', CASE WHEN g->>'decision' = 'pending' THEN 1 END),
               ('grant_withheld', CASE WHEN g->>'decision' = 'withheld' THEN 1 END),
               ('withheld:' || coalesce(g->'rules'->0->>'rule', ''),
                CASE WHEN g->>'decision' = 'withheld' THEN 1 END)) AS x(metric, v)
     WHERE x.v IS NOT NULL
$$;

-- Adds the contributions of new_rows and subtracts those of old_rows (either may be empty).
CREATE OR REPLACE FUNCTION eligibility_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO eligibility_counts AS c (semester, month, school_id, county, city, metric, n)
        SELECT r.semester, x.month, coalesce(r.school_id, ''), coalesce(r.county, ''), coalesce(r.city, ''),
               x.metric, sum(x.v)
          FROM new_rows r, eligibility_contrib(r.status) x
         GROUP BY 1, 2, 3, 4, 5, 6
        ON CONFLICT (semester, month, school_id, county, city, metric) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO eligibility_counts AS c (semester, month, school_id, county, city, metric, n)
        SELECT r.semester, x.month, coalesce(r.school_id, ''), coalesce(r.county, ''), coalesce(r.city, ''),
               x.metric, -sum(x.v)
          FROM old_rows r, eligibility_contrib(r.status) x
         GROUP BY 1, 2, 3, 4, 5, 6
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
        ON CONFLICT (semester, month, school_id, county, city, metric) DO UPDATE SET n = c.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS eligibility_counts_ins ON eligibility_status;
DROP TRIGGER IF EXISTS eligibility_counts_upd ON eligibility_status;
DROP TRIGGER IF EXISTS eligibility_counts_del ON eligibility_status;
CREATE TRIGGER eligibility_counts_ins AFTER INSERT ON eligibility_status
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION eligibility_counts_apply();
CREATE TRIGGER eligibility_counts_upd AFTER UPDATE ON eligibility_status
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION eligibility_counts_apply();
CREATE TRIGGER eligibility_counts_del AFTER DELETE ON eligibility_status
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION eligibility_counts_apply();

-- The statuses already there (once, with the writers held off by the projection's lock).
SELECT pg_advisory_xact_lock(727104);
TRUNCATE eligibility_counts;
INSERT INTO eligibility_counts (semester, month, school_id, county, city, metric, n)
SELECT r.semester, x.month, coalesce(r.school_id, ''), coalesce(r.county, ''), coalesce(r.city, ''), x.metric,
       sum(x.v)
  FROM eligibility_status r, eligibility_contrib(r.status) x
 GROUP BY 1, 2, 3, 4, 5, 6;
