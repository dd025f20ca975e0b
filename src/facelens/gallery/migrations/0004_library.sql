-- facelens PostgreSQL gallery, schema version 4: the library beside the gallery, in its database
-- (src/facelens/cluster/postgres_store.py; the same tables as the SQLite library file,
-- src/facelens/cluster/store.py). Every scanned item, every face found, the groups of faces,
-- the corrections. With the gallery's key, a face's vector and crop are AES-256-GCM ciphertext
-- bound to the library (library_meta 'library_id'), the face and its item; erasing a person
-- deletes their rows and rewrites these tables (VACUUM FULL).
CREATE TABLE facelens.library_meta (
    key text PRIMARY KEY,
    value text NOT NULL
);

-- One row per photo or video: keyed by path while pending, by the sha256 of its bytes once read.
CREATE TABLE facelens.library_items (
    id bigserial PRIMARY KEY,
    source text NOT NULL,
    sha256 text NOT NULL UNIQUE,
    width integer NOT NULL,
    height integer NOT NULL,
    faces integer NOT NULL,
    added_at text NOT NULL,
    kind text NOT NULL DEFAULT 'image',
    state text NOT NULL DEFAULT 'done' CHECK (state IN ('pending', 'done', 'failed')),
    error text,
    frames integer,
    duplicate_of bigint
);
CREATE INDEX library_items_by_source ON facelens.library_items (source);
CREATE INDEX library_items_by_state ON facelens.library_items (state, id);

CREATE TABLE facelens.library_groups (
    id bigserial PRIMARY KEY,
    name text UNIQUE,
    created_at text NOT NULL,
    hidden boolean NOT NULL DEFAULT false
);

-- box (x, y, w, h) in pixels; time in seconds into a video (NULL for a photo); vector: float32
-- template bytes (or their ciphertext); crop: aligned face JPEG (or its ciphertext).
CREATE TABLE facelens.library_faces (
    id bigserial PRIMARY KEY,
    item_id bigint NOT NULL REFERENCES facelens.library_items(id) ON DELETE CASCADE,
    x double precision NOT NULL,
    y double precision NOT NULL,
    w double precision NOT NULL,
    h double precision NOT NULL,
    quality double precision NOT NULL,
    vector bytea NOT NULL,
    crop bytea,
    group_id bigint REFERENCES facelens.library_groups(id) ON DELETE SET NULL,
    template_id bigint,
    enrolled_as text,
    added_at text NOT NULL,
    frame_index integer,
    time double precision
);
CREATE INDEX library_faces_by_group ON facelens.library_faces (group_id);
CREATE INDEX library_faces_by_item ON facelens.library_faces (item_id);

CREATE TABLE facelens.library_not_person (
    face_id bigint NOT NULL REFERENCES facelens.library_faces(id) ON DELETE CASCADE,
    name text NOT NULL,
    created_at text NOT NULL,
    PRIMARY KEY (face_id, name)
);
CREATE INDEX library_not_person_by_name ON facelens.library_not_person (name);

CREATE TABLE facelens.library_undo (
    id integer PRIMARY KEY CHECK (id = 1),
    action text NOT NULL,
    snapshot text NOT NULL,
    created_at text NOT NULL
);

CREATE TABLE facelens.library_links (
    kind text NOT NULL CHECK (kind IN ('must', 'cannot')),
    face_a bigint NOT NULL REFERENCES facelens.library_faces(id) ON DELETE CASCADE,
    face_b bigint NOT NULL REFERENCES facelens.library_faces(id) ON DELETE CASCADE,
    created_at text NOT NULL,
    PRIMARY KEY (kind, face_a, face_b),
    CHECK (face_a < face_b)
);
CREATE INDEX library_links_by_b ON facelens.library_links (face_b);

CREATE TABLE facelens.library_corrections (
    id bigserial PRIMARY KEY,
    action text NOT NULL,
    detail text NOT NULL,
    created_at text NOT NULL
);
