-- +goose Up
-- A slot's version orders the change feed's events of that slot: every
-- statement that changes its seats adds one. A bigint never wraps, however
-- long a slot lives and however often it is booked and cancelled.
ALTER TABLE time_slots ALTER COLUMN version TYPE BIGINT;

-- +goose Down
ALTER TABLE time_slots ALTER COLUMN version TYPE INTEGER;
