-- +goose Up
-- btree_gist lets one exclusion constraint mix "=" on provider_id with
-- "&&" on the slot's time range.
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE providers (
    id                 BIGSERIAL PRIMARY KEY,
    name               TEXT        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    time_zone          TEXT        NOT NULL,
    slot_minutes       INTEGER     NOT NULL CHECK (slot_minutes BETWEEN 5 AND 480),
    buffer_minutes     INTEGER     NOT NULL DEFAULT 0 CHECK (buffer_minutes BETWEEN 0 AND 240),
    capacity           INTEGER     NOT NULL DEFAULT 1 CHECK (capacity BETWEEN 1 AND 1000),
    min_notice_minutes INTEGER     NOT NULL DEFAULT 0 CHECK (min_notice_minutes >= 0),
    working_hours      TEXT        NOT NULL DEFAULT '[]',
    active             BOOLEAN     NOT NULL DEFAULT TRUE,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE time_slots (
    id           BIGSERIAL PRIMARY KEY,
    provider_id  BIGINT      NOT NULL REFERENCES providers (id) ON DELETE RESTRICT,
    start_time   TIMESTAMPTZ NOT NULL,
    end_time     TIMESTAMPTZ NOT NULL,
    date         DATE        NOT NULL,
    capacity     INTEGER     NOT NULL CHECK (capacity BETWEEN 1 AND 1000),
    booked_count INTEGER     NOT NULL DEFAULT 0,
    -- Derived, never written: a slot is booked exactly when it is full.
    status       TEXT GENERATED ALWAYS AS (CASE WHEN booked_count >= capacity THEN 'booked' ELSE 'available' END) STORED,
    version      INTEGER     NOT NULL DEFAULT 1,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT time_slots_booked_count_range CHECK (booked_count >= 0 AND booked_count <= capacity),
    CONSTRAINT time_slots_end_after_start CHECK (end_time > start_time),
    -- Generation's idempotency key: ON CONFLICT DO NOTHING lands here.
    CONSTRAINT time_slots_provider_start_key UNIQUE (provider_id, start_time),
    -- Two slots of one provider never overlap, whatever the provider's
    -- slot length was when each was generated.
    CONSTRAINT time_slots_no_overlap EXCLUDE USING gist (provider_id WITH =, tstzrange(start_time, end_time) WITH &&)
);

-- Serves: the unfiltered and instant-filtered (from/to) listings, which walk
-- (start_time, id) in keyset order; cleanup's "ended before" scan, bounded by
-- start_time; stats' first/last slot.
CREATE INDEX time_slots_start_id_idx ON time_slots (start_time, id);

-- Serves: listings filtered by providerId / providerIds (with or without
-- date ranges, which are also turned into start_time bounds), in keyset
-- order; the foreign key from time_slots to providers.
-- (time_slots_provider_start_key covers (provider_id, start_time) too, but
-- keyset order needs id as the tie-breaker.)
CREATE INDEX time_slots_provider_start_id_idx ON time_slots (provider_id, start_time, id);

-- Serves: the date / startDate / endDate filters when no provider is given,
-- and stats' distinct days from today on.
CREATE INDEX time_slots_date_idx ON time_slots (date);

CREATE TABLE bookings (
    id              BIGSERIAL PRIMARY KEY,
    -- Cleanup deletes old slots; the booking keeps its snapshot below.
    slot_id         BIGINT      REFERENCES time_slots (id) ON DELETE SET NULL,
    provider_id     BIGINT      NOT NULL REFERENCES providers (id) ON DELETE RESTRICT,
    start_time      TIMESTAMPTZ NOT NULL,
    end_time        TIMESTAMPTZ NOT NULL,
    customer        TEXT        NOT NULL CHECK (length(customer) BETWEEN 1 AND 200),
    status          TEXT        NOT NULL CHECK (status IN ('confirmed', 'cancelled')),
    idempotency_key TEXT        UNIQUE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    cancelled_at    TIMESTAMPTZ
);

-- One confirmed booking per customer per slot.
CREATE UNIQUE INDEX bookings_one_confirmed_per_customer ON bookings (slot_id, customer) WHERE status = 'confirmed';
-- Serves: the foreign keys (ON DELETE SET NULL during cleanup).
CREATE INDEX bookings_slot_idx ON bookings (slot_id);
CREATE INDEX bookings_provider_idx ON bookings (provider_id);

-- +goose Down
DROP TABLE bookings;
DROP TABLE time_slots;
DROP TABLE providers;
