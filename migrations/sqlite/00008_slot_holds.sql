-- +goose Up
-- A hold keeps a seat of a slot for a customer for a few minutes, and stops
-- keeping it by time alone: a hold is live while its status is 'held' and
-- expires_at is in the future. Releasing it or turning it into a booking
-- ends it at once; an expired row stays until the cleanup deletes it.
CREATE TABLE slot_holds (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    reference         TEXT     NOT NULL UNIQUE,
    slot_id           INTEGER  NOT NULL REFERENCES time_slots (id) ON DELETE CASCADE,
    customer          TEXT     CHECK (customer IS NULL OR length(customer) BETWEEN 1 AND 200),
    customer_id       TEXT     CHECK (customer_id IS NULL OR length(customer_id) BETWEEN 1 AND 200),
    idempotency_key   TEXT,
    status            TEXT     NOT NULL CHECK (status IN ('held', 'released', 'booked')),
    expires_at        DATETIME NOT NULL,
    created_at        DATETIME NOT NULL,
    ended_at          DATETIME,
    -- The booking a hold became (status 'booked').
    booking_reference TEXT
);

-- Serves: counting a slot's live holds (listings, claims, compaction).
CREATE INDEX slot_holds_slot_live_idx ON slot_holds (slot_id, expires_at) WHERE status = 'held';
-- Serves: the foreign key's cascade; the cleanup of ended holds.
CREATE INDEX slot_holds_slot_idx ON slot_holds (slot_id);
CREATE INDEX slot_holds_expires_idx ON slot_holds (expires_at);
-- Idempotency keys of holds, scoped like bookings' keys.
CREATE UNIQUE INDEX slot_holds_idempotency_key ON slot_holds (idempotency_key) WHERE customer_id IS NULL;
CREATE UNIQUE INDEX slot_holds_owner_idempotency_key ON slot_holds (customer_id, idempotency_key) WHERE customer_id IS NOT NULL;

-- A slot's hold summary (see the PostgreSQL migration of this number):
-- held_count holds were live when it was last written, expiring from
-- held_first to held_until at the latest (both NULL with no hold).
ALTER TABLE time_slots ADD COLUMN held_count INTEGER NOT NULL DEFAULT 0 CHECK (held_count >= 0);
ALTER TABLE time_slots ADD COLUMN held_first DATETIME;
ALTER TABLE time_slots ADD COLUMN held_until DATETIME;

-- +goose Down
ALTER TABLE time_slots DROP COLUMN held_until;
ALTER TABLE time_slots DROP COLUMN held_first;
ALTER TABLE time_slots DROP COLUMN held_count;
DROP TABLE slot_holds;
