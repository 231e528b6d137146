-- +goose Up
-- A slot lasts at most 480 minutes (slot_minutes' upper bound); the overlap
-- trigger's probe relies on it. SQLite cannot add a CHECK to an existing
-- table, so a trigger refuses a longer row instead.
-- +goose StatementBegin
CREATE TRIGGER time_slots_length_range
BEFORE INSERT ON time_slots
WHEN (julianday(NEW.end_time) - julianday(NEW.start_time)) * 1440 > 480.001
BEGIN
    SELECT RAISE(ABORT, 'time_slots: a slot lasts at most 480 minutes');
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER time_slots_length_range;
