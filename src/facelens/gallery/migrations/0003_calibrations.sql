-- facelens PostgreSQL gallery, schema version 3: calibrations fitted on the deployment's people
-- (`facelens calibrate`, src/facelens/match/deployment.py). Every version is kept; the one in
-- force has removed_at NULL (at most one). record holds the thresholds, intervals, Cllr and the
-- calibration itself (JSON), never a template. Each change also writes an entry in
-- facelens.audit (action 'calibrate' or 'calibration_remove').
CREATE TABLE facelens.calibrations (
    version bigserial PRIMARY KEY,
    id text NOT NULL UNIQUE,
    model_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    removed_at timestamptz,
    record jsonb NOT NULL
);
CREATE UNIQUE INDEX calibrations_in_force ON facelens.calibrations ((true)) WHERE removed_at IS NULL;
