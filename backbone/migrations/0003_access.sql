-- Access and a hardened edge (backbone/edge.py, backbone/issuer.py).

-- Terminal client credentials: written by enrolment when operations register a terminal or
-- rotate its secret; read by the embedded issuer's token endpoint. Only a SHA-256 of the
-- 256-bit random secret is kept. The terminal itself is an event stream (TerminalRegistered,
-- TerminalRevoked); services read revocation from the log, not from here.
CREATE TABLE terminal_credentials (
    terminal_id  text        PRIMARY KEY,
    school_id    text        NOT NULL,
    secret_hash  text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);

-- Idempotency-Key: the first answer to a write, replayed for a retry with the same key from
-- the same caller. request_hash tells a retry from a different request reusing the key.
CREATE TABLE idempotency_keys (
    caller        text        NOT NULL,
    key           text        NOT NULL,
    route         text        NOT NULL,
    request_hash  text        NOT NULL,
    status        integer     NOT NULL,
    body          jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (caller, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

-- Every read of one student's personal data: who, when, which student, through which route.
-- Append-only like the event log; auditors list it.
CREATE TABLE personal_data_reads (
    id          bigserial   PRIMARY KEY,
    read_at     timestamptz NOT NULL DEFAULT now(),
    service     text        NOT NULL,
    route       text        NOT NULL,
    caller      text        NOT NULL,
    caller_role text        NOT NULL,
    student_id  text        NOT NULL
);
CREATE INDEX personal_data_reads_student_idx ON personal_data_reads (student_id, read_at);
CREATE INDEX personal_data_reads_caller_idx ON personal_data_reads (caller, read_at);
CREATE TRIGGER personal_data_reads_no_update BEFORE UPDATE OR DELETE ON personal_data_reads
    FOR EACH ROW EXECUTE FUNCTION events_are_append_only();

-- Capture verdicts by check and student (spotcheck counts failed terminal confirmations
-- before a forced pass; terminals read a capture's verdict).
CREATE INDEX events_verdicts_by_check_idx ON events ((payload->>'check_id'), (payload->>'student_id'))
    WHERE type IN ('CaptureVerified', 'CaptureRejected');
