-- +goose Up
-- A claimed run is a lease its runner renews: lease_until is when it lapses
-- unless renewed. A run whose lease lapsed (its process died) is recorded as
-- interrupted, and another replica takes the tick over as the next attempt:
-- one row per attempt, so the claim is the unique (job, tick, attempt).
ALTER TABLE job_runs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1 CHECK (attempt BETWEEN 1 AND 100);
ALTER TABLE job_runs ADD COLUMN lease_until TIMESTAMPTZ;
-- Runs of earlier versions renewed nothing: a running one keeps an hour
-- from its start, the longest a generation of theirs could take.
UPDATE job_runs SET lease_until = COALESCE(finished_at, started_at + INTERVAL '1 hour');
ALTER TABLE job_runs ALTER COLUMN lease_until SET NOT NULL;
ALTER TABLE job_runs DROP CONSTRAINT job_runs_outcome_check;
ALTER TABLE job_runs ADD CONSTRAINT job_runs_outcome_check
    CHECK (outcome IN ('running', 'succeeded', 'failed', 'interrupted'));
ALTER TABLE job_runs DROP CONSTRAINT job_runs_job_tick_key;
ALTER TABLE job_runs ADD CONSTRAINT job_runs_job_tick_attempt_key UNIQUE (job, tick, attempt);
-- Serves: the sweep of lapsed leases.
CREATE INDEX job_runs_running_lease_idx ON job_runs (lease_until) WHERE outcome = 'running';

-- +goose Down
DROP INDEX job_runs_running_lease_idx;
DELETE FROM job_runs WHERE attempt > 1;
UPDATE job_runs SET outcome = 'failed' WHERE outcome = 'interrupted';
ALTER TABLE job_runs DROP CONSTRAINT job_runs_job_tick_attempt_key;
ALTER TABLE job_runs ADD CONSTRAINT job_runs_job_tick_key UNIQUE (job, tick);
ALTER TABLE job_runs DROP CONSTRAINT job_runs_outcome_check;
ALTER TABLE job_runs ADD CONSTRAINT job_runs_outcome_check CHECK (outcome IN ('running', 'succeeded', 'failed'));
ALTER TABLE job_runs DROP COLUMN lease_until;
ALTER TABLE job_runs DROP COLUMN attempt;
