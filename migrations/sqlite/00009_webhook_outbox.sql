-- +goose Up
-- PostgreSQL's version 9 adds webhook_outbox, where the booking statement
-- stages its booking.created events. On SQLite a booking enqueues its
-- events on River in its own transaction, so there is nothing to stage;
-- this version keeps the two dialects' numbering in step.
SELECT 1;

-- +goose Down
SELECT 1;
