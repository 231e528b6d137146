-- +goose Up
-- Webhook endpoints that admins register, and the latest state of each
-- delivery to them (one row per endpoint and event, updated at every
-- attempt). The deliveries themselves are River jobs (river_job, created
-- by River's own migrations beside these), enqueued in the transaction of
-- the booking they tell about.
CREATE TABLE webhook_endpoints (
    id          BIGSERIAL PRIMARY KEY,
    url         TEXT        NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    description TEXT        NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    -- The event types it wants, comma-separated (booking.created, …).
    events      TEXT        NOT NULL CHECK (length(events) BETWEEN 1 AND 500),
    -- The signing secret (whsec_…): the server signs with it, so it is kept
    -- as given to the admin once.
    secret      TEXT        NOT NULL,
    enabled     BOOLEAN     NOT NULL DEFAULT TRUE,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE webhook_deliveries (
    id              BIGSERIAL PRIMARY KEY,
    endpoint_id     BIGINT      NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id        TEXT        NOT NULL,
    event_type      TEXT        NOT NULL,
    job_id          BIGINT      NOT NULL,
    status          TEXT        NOT NULL CHECK (status IN ('delivered', 'retrying', 'failed')),
    attempt         INTEGER     NOT NULL,
    response_code   INTEGER,
    error           TEXT        NOT NULL DEFAULT '',
    response_body   TEXT        NOT NULL DEFAULT '',
    next_attempt_at TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    CONSTRAINT webhook_deliveries_endpoint_event_key UNIQUE (endpoint_id, event_id)
);
-- Serves: an endpoint's recent deliveries, newest first.
CREATE INDEX webhook_deliveries_endpoint_recent_idx ON webhook_deliveries (endpoint_id, updated_at DESC, id DESC);

-- +goose Down
DROP TABLE webhook_deliveries;
DROP TABLE webhook_endpoints;
