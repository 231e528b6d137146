-- +goose Up
-- One row per run of a scheduled job. The row is the claim: a replica runs
-- a tick only if its INSERT of (job, tick) wins the unique constraint, so
-- each tick runs exactly once however many replicas fire it.
CREATE TABLE job_runs (
    id          BIGSERIAL PRIMARY KEY,
    job         TEXT        NOT NULL CHECK (length(job) BETWEEN 1 AND 64),
    tick        TIMESTAMPTZ NOT NULL,
    instance    TEXT        NOT NULL DEFAULT '',
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    outcome     TEXT        NOT NULL CHECK (outcome IN ('running', 'succeeded', 'failed')),
    details     TEXT        NOT NULL DEFAULT '',
    error       TEXT        NOT NULL DEFAULT '',
    CONSTRAINT job_runs_job_tick_key UNIQUE (job, tick)
);

-- +goose Down
DROP TABLE job_runs;
