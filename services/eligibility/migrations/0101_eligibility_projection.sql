-- Eligibility: the live projection (services/eligibility/projection/). Idempotent DDL.
-- Needs processed_events from backbone/migrations/0001_event_log.sql (consumer 'eligibility').

-- Per-student facts folded from the log (StudentFacts.to_json), the state the rules read.
CREATE TABLE IF NOT EXISTS eligibility_facts (
    student_id    text   PRIMARY KEY,
    school_id     text,                          -- from the latest StudentRegistered
    facts         jsonb  NOT NULL,
    last_position bigint
);
CREATE INDEX IF NOT EXISTS eligibility_facts_school_idx ON eligibility_facts (school_id);

-- Facts about many students: kind = check | closing | publication | roster_part.
CREATE TABLE IF NOT EXISTS eligibility_shared (
    kind  text  NOT NULL,
    key   text  NOT NULL,
    fact  jsonb NOT NULL,
    PRIMARY KEY (kind, key)
);

-- Entries of each national roster part (NationalRosterImported), for per-student look-ups.
CREATE TABLE IF NOT EXISTS eligibility_roster_entries (
    semester       text    NOT NULL,
    import_id      text    NOT NULL,
    part           integer NOT NULL,
    student_id     text    NOT NULL,
    id_number_hash text    NOT NULL,
    PRIMARY KEY (semester, import_id, part, student_id)
);
CREATE INDEX IF NOT EXISTS eligibility_roster_entries_student_idx ON eligibility_roster_entries (student_id);

-- The derived statuses: one row per (student, semester), schema eligibility-status.v1.
CREATE TABLE IF NOT EXISTS eligibility_status (
    student_id    text        NOT NULL,
    semester      text        NOT NULL,
    school_id     text,
    county        text,
    city          text,
    status        jsonb       NOT NULL,
    last_position bigint,                       -- highest log position of the batch that wrote it
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (student_id, semester)
);
CREATE INDEX IF NOT EXISTS eligibility_status_school_idx ON eligibility_status (semester, school_id);
CREATE INDEX IF NOT EXISTS eligibility_status_county_idx ON eligibility_status (semester, county);
CREATE INDEX IF NOT EXISTS eligibility_status_city_idx ON eligibility_status (semester, city);

-- A token that changes whenever shared facts change (lets processes cache them safely).
CREATE TABLE IF NOT EXISTS eligibility_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
