-- Hardship: the registry projection. Idempotent DDL.
-- Registry lists (HardshipRegistryImported), projected in the same transaction as the import so a
-- comparison is two index probes instead of reading every list from the log: the keyed hashes of
-- each import, and the import in force for each list, system and school year (the latest
-- replaces the earlier). Rebuildable from the log (services/hardship/registry.py rebuild).
CREATE TABLE IF NOT EXISTS hardship_registry_hashes (
    import_id  text NOT NULL,
    id_hash    text NOT NULL,
    PRIMARY KEY (import_id, id_hash)
);
CREATE TABLE IF NOT EXISTS hardship_registry_latest (
    school_year text   NOT NULL,
    registry    text   NOT NULL,
    system      text   NOT NULL,
    import_id   text   NOT NULL,
    position    bigint NOT NULL,
    PRIMARY KEY (school_year, registry, system)
);
-- 0106's index for reading the lists from the log is not used any more.
DROP INDEX IF EXISTS events_hardship_registry_year_idx;
