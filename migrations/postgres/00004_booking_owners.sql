-- +goose Up
-- Customers reach a booking through an unguessable reference, not its
-- sequential id. New bookings get theirs from the server ("bk_" and 18
-- random bytes in base64url); existing bookings get one here, "bk_" and the
-- hex of two version-4 UUIDs (244 random bits). The server only ever
-- compares references, so the two shapes live side by side.
ALTER TABLE bookings ADD COLUMN reference TEXT;
UPDATE bookings
   SET reference = 'bk_' || replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', '');
ALTER TABLE bookings ALTER COLUMN reference SET NOT NULL;
ALTER TABLE bookings ADD CONSTRAINT bookings_reference_key UNIQUE (reference);

-- The verified end user (a JWT's subject) who owns the booking; NULL for an
-- anonymous booking, and once an admin erased the customer's data.
ALTER TABLE bookings ADD COLUMN customer_id TEXT
    CONSTRAINT bookings_customer_id_length CHECK (customer_id IS NULL OR length(customer_id) BETWEEN 1 AND 200);

-- Idempotency keys are scoped to their owner when the owner is known, and
-- global among anonymous bookings.
ALTER TABLE bookings DROP CONSTRAINT bookings_idempotency_key_key;
CREATE UNIQUE INDEX bookings_idempotency_key ON bookings (idempotency_key) WHERE customer_id IS NULL;
CREATE UNIQUE INDEX bookings_owner_idempotency_key ON bookings (customer_id, idempotency_key) WHERE customer_id IS NOT NULL;

-- Serves: the admin booking lists in (start_time, id) order, all or by
-- provider (and the foreign key to providers, which bookings_provider_idx
-- served); a customer's own bookings.
CREATE INDEX bookings_start_id_idx ON bookings (start_time, id);
CREATE INDEX bookings_provider_start_id_idx ON bookings (provider_id, start_time, id);
DROP INDEX bookings_provider_idx;
CREATE INDEX bookings_customer_start_id_idx ON bookings (customer_id, start_time, id) WHERE customer_id IS NOT NULL;

-- Where a booking was before each reschedule, oldest first. The slot may be
-- cleaned up later; the row keeps its times.
CREATE TABLE booking_moves (
    id              BIGSERIAL PRIMARY KEY,
    booking_id      BIGINT      NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    from_slot_id    BIGINT      REFERENCES time_slots (id) ON DELETE SET NULL,
    from_start_time TIMESTAMPTZ NOT NULL,
    from_end_time   TIMESTAMPTZ NOT NULL,
    moved_at        TIMESTAMPTZ NOT NULL
);
-- Serves: a page's moves by booking; the foreign key from time_slots
-- (ON DELETE SET NULL during cleanup).
CREATE INDEX booking_moves_booking_idx ON booking_moves (booking_id, id);
CREATE INDEX booking_moves_from_slot_idx ON booking_moves (from_slot_id);

-- +goose Down
-- Going down makes idempotency keys global again: it fails while two owners
-- hold the same key.
DROP TABLE booking_moves;
DROP INDEX bookings_customer_start_id_idx;
CREATE INDEX bookings_provider_idx ON bookings (provider_id);
DROP INDEX bookings_provider_start_id_idx;
DROP INDEX bookings_start_id_idx;
DROP INDEX bookings_owner_idempotency_key;
DROP INDEX bookings_idempotency_key;
ALTER TABLE bookings ADD CONSTRAINT bookings_idempotency_key_key UNIQUE (idempotency_key);
ALTER TABLE bookings DROP COLUMN customer_id;
ALTER TABLE bookings DROP COLUMN reference;
