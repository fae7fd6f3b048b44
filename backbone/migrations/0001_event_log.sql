-- The append-only event log. It is also the outbox: the relay publishes from it.
CREATE TABLE events (
    position        bigserial   PRIMARY KEY,            -- global order; gapless in commit order (see eventstore.py)
    event_id        uuid        NOT NULL UNIQUE,         -- idempotent append
    stream          text        NOT NULL,
    stream_version  integer     NOT NULL CHECK (stream_version >= 1),
    type            text        NOT NULL,
    schema_version  integer     NOT NULL CHECK (schema_version >= 1),
    occurred_at     timestamptz NOT NULL,               -- business time
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),  -- when the system learned it
    actor           jsonb       NOT NULL,
    correlation_id  uuid,
    causation_id    uuid,
    payload         jsonb       NOT NULL,
    UNIQUE (stream, stream_version)                      -- optimistic concurrency per stream
);
CREATE INDEX events_recorded_at_idx ON events (recorded_at);

CREATE FUNCTION events_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only: % on events is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_append_only();
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_append_only();

-- How far the relay has published (one row per relay name).
CREATE TABLE relay_checkpoints (
    name       text   PRIMARY KEY,
    position   bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- What each consumer has processed, written in the same transaction as its effects.
CREATE TABLE processed_events (
    consumer     text        NOT NULL,
    event_id     uuid        NOT NULL,
    position     bigint,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX processed_events_position_idx ON processed_events (consumer, position);
