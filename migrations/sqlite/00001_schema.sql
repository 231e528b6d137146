-- +goose Up
-- Times are stored as UTC text in one fixed layout, so text order is time
-- order; dates as YYYY-MM-DD text.
CREATE TABLE providers (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    name               TEXT     NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    time_zone          TEXT     NOT NULL,
    slot_minutes       INTEGER  NOT NULL CHECK (slot_minutes BETWEEN 5 AND 480),
    buffer_minutes     INTEGER  NOT NULL DEFAULT 0 CHECK (buffer_minutes BETWEEN 0 AND 240),
    capacity           INTEGER  NOT NULL DEFAULT 1 CHECK (capacity BETWEEN 1 AND 1000),
    min_notice_minutes INTEGER  NOT NULL DEFAULT 0 CHECK (min_notice_minutes >= 0),
    working_hours      TEXT     NOT NULL DEFAULT '[]',
    active             BOOLEAN  NOT NULL DEFAULT 1,
    created_at         DATETIME NOT NULL,
    updated_at         DATETIME NOT NULL
);

CREATE TABLE time_slots (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    provider_id  INTEGER  NOT NULL REFERENCES providers (id) ON DELETE RESTRICT,
    start_time   DATETIME NOT NULL,
    end_time     DATETIME NOT NULL,
    date         TEXT     NOT NULL,
    capacity     INTEGER  NOT NULL CHECK (capacity BETWEEN 1 AND 1000),
    booked_count INTEGER  NOT NULL DEFAULT 0,
    -- Derived, never written: a slot is booked exactly when it is full.
    status       TEXT GENERATED ALWAYS AS (CASE WHEN booked_count >= capacity THEN 'booked' ELSE 'available' END) VIRTUAL,
    version      INTEGER  NOT NULL DEFAULT 1,
    created_at   DATETIME NOT NULL,
    updated_at   DATETIME NOT NULL,
    CONSTRAINT time_slots_booked_count_range CHECK (booked_count >= 0 AND booked_count <= capacity),
    CONSTRAINT time_slots_end_after_start CHECK (end_time > start_time),
    -- Generation's idempotency key: ON CONFLICT DO NOTHING lands here.
    CONSTRAINT time_slots_provider_start_key UNIQUE (provider_id, start_time)
);

-- Two slots of one provider never overlap. SQLite has no exclusion
-- constraint, so this trigger is the same guarantee: an overlapping row is
-- silently dropped (RAISE(IGNORE)), exactly like ON CONFLICT DO NOTHING, and
-- is not counted in changes(). A slot lasts at most 480 minutes, so only
-- slots starting in the 480 minutes before the new one's start can reach it:
-- that bound keeps the probe an index range scan.
-- +goose StatementBegin
CREATE TRIGGER time_slots_no_overlap
BEFORE INSERT ON time_slots
WHEN EXISTS (
    SELECT 1 FROM time_slots o
    WHERE o.provider_id = NEW.provider_id
      AND o.start_time < NEW.end_time
      AND o.start_time > strftime('%Y-%m-%d %H:%M:%S', NEW.start_time, '-481 minutes')
      AND o.end_time > NEW.start_time
)
BEGIN
    SELECT RAISE(IGNORE);
END;
-- +goose StatementEnd

-- Start and end never move once a slot exists.
-- +goose StatementBegin
CREATE TRIGGER time_slots_times_fixed
BEFORE UPDATE OF provider_id, start_time, end_time ON time_slots
BEGIN
    SELECT RAISE(ABORT, 'time_slots: provider_id, start_time and end_time are immutable');
END;
-- +goose StatementEnd

-- Serves: the unfiltered and instant-filtered (from/to) listings, which walk
-- (start_time, id) in keyset order; cleanup's "ended before" scan, bounded by
-- start_time; stats' first/last slot.
CREATE INDEX time_slots_start_id_idx ON time_slots (start_time, id);

-- Serves: listings filtered by providerId / providerIds (with or without
-- date ranges, which are also turned into start_time bounds), in keyset
-- order; the overlap trigger's probe; the foreign key to providers.
CREATE INDEX time_slots_provider_start_id_idx ON time_slots (provider_id, start_time, id);

-- Serves: the date / startDate / endDate filters when no provider is given,
-- and stats' distinct days from today on.
CREATE INDEX time_slots_date_idx ON time_slots (date);

CREATE TABLE bookings (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Cleanup deletes old slots; the booking keeps its snapshot below.
    slot_id         INTEGER  REFERENCES time_slots (id) ON DELETE SET NULL,
    provider_id     INTEGER  NOT NULL REFERENCES providers (id) ON DELETE RESTRICT,
    start_time      DATETIME NOT NULL,
    end_time        DATETIME NOT NULL,
    customer        TEXT     NOT NULL CHECK (length(customer) BETWEEN 1 AND 200),
    status          TEXT     NOT NULL CHECK (status IN ('confirmed', 'cancelled')),
    idempotency_key TEXT     UNIQUE,
    created_at      DATETIME NOT NULL,
    cancelled_at    DATETIME
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
