-- facelens PostgreSQL gallery, schema version 1.
-- Everything lives in the schema "facelens" so the gallery can share a database.
-- The template column has no dimension yet: the first template fixes it (see postgres.py).
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE facelens.meta (
    key text PRIMARY KEY,
    value text NOT NULL
);

-- One row; every write transaction locks and bumps it, so writers queue (like SQLite's
-- BEGIN IMMEDIATE) and readers know when their cached template matrix is stale.
CREATE TABLE facelens.state (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version bigint NOT NULL
);
INSERT INTO facelens.state (version) VALUES (0);

CREATE TABLE facelens.people (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- vector: the unit-norm template (NULL when the gallery is encrypted);
-- sealed_vector: its AES-256-GCM ciphertext (NULL when the gallery is not encrypted).
CREATE TABLE facelens.templates (
    id bigserial PRIMARY KEY,
    person_id bigint NOT NULL REFERENCES facelens.people(id) ON DELETE CASCADE,
    model_id text NOT NULL,
    vector vector,
    sealed_vector bytea,
    source text NOT NULL,
    quality double precision NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((vector IS NULL) <> (sealed_vector IS NULL))
);
CREATE INDEX templates_by_person ON facelens.templates (person_id);

-- The aligned face JPEG of a template (ciphertext when the gallery is encrypted).
CREATE TABLE facelens.crops (
    template_id bigint PRIMARY KEY REFERENCES facelens.templates(id) ON DELETE CASCADE,
    jpeg bytea NOT NULL
);
