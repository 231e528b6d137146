-- +goose Up
-- A slot's version orders the change feed's events of that slot: every
-- statement that changes its seats adds one. SQLite's INTEGER already holds
-- 64 bits, so only PostgreSQL's column widens; this number keeps both
-- dialects' migrations in step.
SELECT 1;

-- +goose Down
SELECT 1;
