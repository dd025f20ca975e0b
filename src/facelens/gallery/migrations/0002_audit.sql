-- facelens PostgreSQL gallery, schema version 2: the service's audit log.
-- Same fields as the service's SQLite audit table (src/facelens/service/state.py): who (API
-- key id, name, role) did what (action) to which person or photo (target), and the outcome.
-- It never holds a template, a crop or an image, and an erase never touches it.
CREATE TABLE facelens.audit (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    key_id text,
    key_name text,
    role text,
    action text NOT NULL,
    target text,
    detail jsonb NOT NULL DEFAULT '{}'::jsonb,
    outcome text NOT NULL
);
CREATE INDEX audit_by_time ON facelens.audit (at);
