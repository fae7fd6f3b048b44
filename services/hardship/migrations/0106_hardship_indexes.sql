-- Hardship: indexes on the event log for the hardship service's lookups. Idempotent DDL.
-- The cases of a school and year (HardshipCaseOpened), and the registry lists of a school year
-- with membership of a keyed ID-number hash (jsonb ? on id_number_hashes).
CREATE INDEX IF NOT EXISTS events_hardship_case_school_idx
    ON events ((payload->>'school_id'), (payload->>'school_year'))
    WHERE type = 'HardshipCaseOpened';
CREATE INDEX IF NOT EXISTS events_hardship_registry_year_idx
    ON events ((payload->>'school_year'), (payload->>'registry'), (payload->>'system'), position)
    WHERE type = 'HardshipRegistryImported';
