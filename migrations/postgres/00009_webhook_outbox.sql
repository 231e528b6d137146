-- +goose Up
-- booking.created events staged by the booking's own statement on
-- PostgreSQL, one row per endpoint that wants the event, committed or
-- refused with the booking. The webhook service moves them, many to a
-- transaction, onto River's queue (river_job) and deletes them there: a
-- River job row costs the database far more to write alone than in a
-- batch. Each row holds what the event's body tells: the booking as made
-- and its slot as the booking left it.
CREATE TABLE webhook_outbox (
    id           BIGSERIAL   PRIMARY KEY,
    endpoint_id  BIGINT      NOT NULL,
    event_id     TEXT        NOT NULL,
    event_type   TEXT        NOT NULL,
    -- The event's time, which is the booking's creation, in nanoseconds
    -- since 1970 (the body keeps the nanoseconds, which timestamptz does
    -- not).
    at_ns        BIGINT      NOT NULL,
    booking_id   BIGINT      NOT NULL,
    customer     TEXT        NOT NULL,
    customer_id  TEXT,
    status       TEXT        NOT NULL,
    slot_id      BIGINT      NOT NULL,
    provider_id  BIGINT      NOT NULL,
    start_time   TIMESTAMPTZ NOT NULL,
    end_time     TIMESTAMPTZ NOT NULL,
    capacity     INTEGER     NOT NULL,
    booked_count INTEGER     NOT NULL
);

-- +goose Down
DROP TABLE webhook_outbox;
