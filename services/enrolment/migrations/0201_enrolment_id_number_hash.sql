-- Registered students by ID-number hash: a roster import (POST /students/import) refuses an ID
-- number registered under another student number with one indexed lookup per file.
CREATE INDEX IF NOT EXISTS events_student_id_number_hash_idx
    ON events ((payload->>'id_number_hash'))
    WHERE type = 'StudentRegistered';
