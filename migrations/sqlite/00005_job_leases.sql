-- +goose Up
-- A claimed run is a lease its runner renews: lease_until is when it lapses
-- unless renewed. A run whose lease lapsed (its process died) is recorded as
-- interrupted, and another process takes the tick over as the next attempt:
-- one row per attempt, so the claim is the unique (job, tick, attempt).
-- SQLite cannot change a CHECK or a UNIQUE in place, so the table is rebuilt.
CREATE TABLE job_runs_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    job         TEXT     NOT NULL CHECK (length(job) BETWEEN 1 AND 64),
    tick        DATETIME NOT NULL,
    attempt     INTEGER  NOT NULL DEFAULT 1 CHECK (attempt BETWEEN 1 AND 100),
    instance    TEXT     NOT NULL DEFAULT '',
    started_at  DATETIME NOT NULL,
    lease_until DATETIME NOT NULL,
    finished_at DATETIME,
    outcome     TEXT     NOT NULL CHECK (outcome IN ('running', 'succeeded', 'failed', 'interrupted')),
    details     TEXT     NOT NULL DEFAULT '',
    error       TEXT     NOT NULL DEFAULT '',
    CONSTRAINT job_runs_job_tick_attempt_key UNIQUE (job, tick, attempt)
);
-- Runs of earlier versions renewed nothing: a running one keeps an hour
-- from its start, the longest a generation of theirs could take.
INSERT INTO job_runs_new (id, job, tick, attempt, instance, started_at, lease_until, finished_at, outcome, details, error)
SELECT id, job, tick, 1, instance, started_at, COALESCE(finished_at, datetime(started_at, '+1 hour')),
       finished_at, outcome, details, error
  FROM job_runs;
DELETE FROM sqlite_sequence WHERE name = 'job_runs_new';
INSERT INTO sqlite_sequence (name, seq) SELECT 'job_runs_new', seq FROM sqlite_sequence WHERE name = 'job_runs';
DROP TABLE job_runs;
ALTER TABLE job_runs_new RENAME TO job_runs;
-- Serves: the sweep of lapsed leases.
CREATE INDEX job_runs_running_lease_idx ON job_runs (lease_until) WHERE outcome = 'running';

-- +goose Down
CREATE TABLE job_runs_old (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    job         TEXT     NOT NULL CHECK (length(job) BETWEEN 1 AND 64),
    tick        DATETIME NOT NULL,
    instance    TEXT     NOT NULL DEFAULT '',
    started_at  DATETIME NOT NULL,
    finished_at DATETIME,
    outcome     TEXT     NOT NULL CHECK (outcome IN ('running', 'succeeded', 'failed')),
    details     TEXT     NOT NULL DEFAULT '',
    error       TEXT     NOT NULL DEFAULT '',
    CONSTRAINT job_runs_job_tick_key UNIQUE (job, tick)
);
INSERT INTO job_runs_old (id, job, tick, instance, started_at, finished_at, outcome, details, error)
SELECT id, job, tick, instance, started_at, finished_at,
       CASE outcome WHEN 'interrupted' THEN 'failed' ELSE outcome END, details, error
  FROM job_runs WHERE attempt = 1;
DELETE FROM sqlite_sequence WHERE name = 'job_runs_old';
INSERT INTO sqlite_sequence (name, seq) SELECT 'job_runs_old', seq FROM sqlite_sequence WHERE name = 'job_runs';
DROP TABLE job_runs;
ALTER TABLE job_runs_old RENAME TO job_runs;
