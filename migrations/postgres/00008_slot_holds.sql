-- +goose Up
-- A hold keeps a seat of a slot for a customer for a few minutes, and stops
-- keeping it by time alone: a hold is live while its status is 'held' and
-- expires_at is in the future. Releasing it or turning it into a booking
-- ends it at once; an expired row stays until the cleanup deletes it.
CREATE TABLE slot_holds (
    id                BIGSERIAL PRIMARY KEY,
    reference         TEXT        NOT NULL CONSTRAINT slot_holds_reference_key UNIQUE,
    slot_id           BIGINT      NOT NULL REFERENCES time_slots (id) ON DELETE CASCADE,
    customer          TEXT        CHECK (customer IS NULL OR length(customer) BETWEEN 1 AND 200),
    customer_id       TEXT        CHECK (customer_id IS NULL OR length(customer_id) BETWEEN 1 AND 200),
    idempotency_key   TEXT,
    status            TEXT        NOT NULL CHECK (status IN ('held', 'released', 'booked')),
    expires_at        TIMESTAMPTZ NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    ended_at          TIMESTAMPTZ,
    -- The booking a hold became (status 'booked').
    booking_reference TEXT
);

-- Serves: counting a slot's live holds (listings, claims, compaction).
CREATE INDEX slot_holds_slot_live_idx ON slot_holds (slot_id, expires_at) WHERE status = 'held';
-- Serves: the cleanup of ended holds; the foreign key's cascade goes
-- through slot_holds_slot_live_idx only for held rows, so ended rows need
-- their own.
CREATE INDEX slot_holds_slot_idx ON slot_holds (slot_id);
CREATE INDEX slot_holds_expires_idx ON slot_holds (expires_at);
-- Idempotency keys of holds, scoped like bookings' keys.
CREATE UNIQUE INDEX slot_holds_idempotency_key ON slot_holds (idempotency_key) WHERE customer_id IS NULL;
CREATE UNIQUE INDEX slot_holds_owner_idempotency_key ON slot_holds (customer_id, idempotency_key) WHERE customer_id IS NOT NULL;

-- A slot's hold summary, kept by every statement that takes, ends or
-- recounts a hold of it, so that reads and claims need no look at
-- slot_holds for a slot without holds: held_count holds were live when it
-- was last written, the earliest of them expiring no sooner than
-- held_first and the latest no later than held_until (both NULL with no
-- hold). Once held_until passes, no hold of the slot is live; before
-- held_first passes, all held_count are; in between, slot_holds counts.
ALTER TABLE time_slots
    ADD COLUMN held_count INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN held_first TIMESTAMPTZ,
    ADD COLUMN held_until TIMESTAMPTZ,
    ADD CONSTRAINT time_slots_held_count_range CHECK (held_count >= 0 AND held_count <= capacity);

-- +goose Down
ALTER TABLE time_slots
    DROP CONSTRAINT time_slots_held_count_range,
    DROP COLUMN held_until,
    DROP COLUMN held_first,
    DROP COLUMN held_count;
DROP TABLE slot_holds;
