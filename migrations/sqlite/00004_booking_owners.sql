-- +goose Up
-- Customers reach a booking through an unguessable reference, not its
-- sequential id; the verified end user who owns a booking is customer_id;
-- idempotency keys are scoped to their owner when the owner is known.
-- SQLite cannot drop a column's UNIQUE, so the table is rebuilt; nothing
-- references bookings yet, so the rebuild needs no foreign-key juggling.
CREATE TABLE bookings_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Cleanup deletes old slots; the booking keeps its snapshot below.
    slot_id         INTEGER  REFERENCES time_slots (id) ON DELETE SET NULL,
    provider_id     INTEGER  NOT NULL REFERENCES providers (id) ON DELETE RESTRICT,
    start_time      DATETIME NOT NULL,
    end_time        DATETIME NOT NULL,
    customer        TEXT     NOT NULL CHECK (length(customer) BETWEEN 1 AND 200),
    status          TEXT     NOT NULL CHECK (status IN ('confirmed', 'cancelled')),
    idempotency_key TEXT,
    created_at      DATETIME NOT NULL,
    cancelled_at    DATETIME,
    -- New bookings get "bk_" and 18 random bytes in base64url from the
    -- server; existing ones "bk_" and the hex of 18 random bytes here.
    reference       TEXT     NOT NULL,
    -- The verified end user (a JWT's subject); NULL for an anonymous
    -- booking, and once an admin erased the customer's data.
    customer_id     TEXT     CHECK (customer_id IS NULL OR length(customer_id) BETWEEN 1 AND 200)
);
INSERT INTO bookings_new (id, slot_id, provider_id, start_time, end_time, customer, status,
                          idempotency_key, created_at, cancelled_at, reference)
SELECT id, slot_id, provider_id, start_time, end_time, customer, status,
       idempotency_key, created_at, cancelled_at, 'bk_' || lower(hex(randomblob(18)))
  FROM bookings;
-- Ids go on from where the old table's AUTOINCREMENT left them.
DELETE FROM sqlite_sequence WHERE name = 'bookings_new';
INSERT INTO sqlite_sequence (name, seq) SELECT 'bookings_new', seq FROM sqlite_sequence WHERE name = 'bookings';
DROP TABLE bookings;
ALTER TABLE bookings_new RENAME TO bookings;

CREATE UNIQUE INDEX bookings_reference_key ON bookings (reference);
CREATE UNIQUE INDEX bookings_idempotency_key ON bookings (idempotency_key) WHERE customer_id IS NULL;
CREATE UNIQUE INDEX bookings_owner_idempotency_key ON bookings (customer_id, idempotency_key) WHERE customer_id IS NOT NULL;
-- One confirmed booking per customer per slot.
CREATE UNIQUE INDEX bookings_one_confirmed_per_customer ON bookings (slot_id, customer) WHERE status = 'confirmed';
-- Serves: the foreign key to time_slots (ON DELETE SET NULL during cleanup).
CREATE INDEX bookings_slot_idx ON bookings (slot_id);
-- Serves: the admin booking lists in (start_time, id) order, all or by
-- provider (and the foreign key to providers); a customer's own bookings.
CREATE INDEX bookings_start_id_idx ON bookings (start_time, id);
CREATE INDEX bookings_provider_start_id_idx ON bookings (provider_id, start_time, id);
CREATE INDEX bookings_customer_start_id_idx ON bookings (customer_id, start_time, id) WHERE customer_id IS NOT NULL;

-- Where a booking was before each reschedule, oldest first. The slot may be
-- cleaned up later; the row keeps its times.
CREATE TABLE booking_moves (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    booking_id      INTEGER  NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    from_slot_id    INTEGER  REFERENCES time_slots (id) ON DELETE SET NULL,
    from_start_time DATETIME NOT NULL,
    from_end_time   DATETIME NOT NULL,
    moved_at        DATETIME NOT NULL
);
-- Serves: a page's moves by booking; the foreign key from time_slots.
CREATE INDEX booking_moves_booking_idx ON booking_moves (booking_id, id);
CREATE INDEX booking_moves_from_slot_idx ON booking_moves (from_slot_id);

-- +goose Down
-- Going down makes idempotency keys global again: it fails while two owners
-- hold the same key.
DROP TABLE booking_moves;
CREATE TABLE bookings_old (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
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
INSERT INTO bookings_old SELECT id, slot_id, provider_id, start_time, end_time, customer, status,
       idempotency_key, created_at, cancelled_at FROM bookings;
DELETE FROM sqlite_sequence WHERE name = 'bookings_old';
INSERT INTO sqlite_sequence (name, seq) SELECT 'bookings_old', seq FROM sqlite_sequence WHERE name = 'bookings';
DROP TABLE bookings;
ALTER TABLE bookings_old RENAME TO bookings;
CREATE UNIQUE INDEX bookings_one_confirmed_per_customer ON bookings (slot_id, customer) WHERE status = 'confirmed';
CREATE INDEX bookings_slot_idx ON bookings (slot_id);
CREATE INDEX bookings_provider_idx ON bookings (provider_id);
