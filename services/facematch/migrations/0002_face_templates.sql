-- Enrolled face templates, sealed with AES-256-GCM (key from configuration), one per student.
CREATE TABLE face_templates (
    student_id    text        PRIMARY KEY,
    school_id     text        NOT NULL,
    model_version text        NOT NULL,
    sealed        bytea       NOT NULL,
    source_ref    text,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX face_templates_school_idx ON face_templates (school_id);
CREATE INDEX face_templates_model_idx ON face_templates (model_version);
