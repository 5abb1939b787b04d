-- The daily agenda email (issue 20).
--
-- `agenda_time` is a local wall time in the account's zone; NULL (the default) means no agenda.
ALTER TABLE users ADD COLUMN agenda_time time;

-- One row per account and local date whose agenda was handled: sent, found empty, skipped or
-- failed for good. The primary key is the once-per-day guarantee: a worker claims the day by
-- inserting the row, in the transaction that sends, so a second worker, a retry, a restart or a
-- job queued after a time-zone change finds it and sends nothing. Rows are purged by the
-- maintenance job once no job can ask for their day any more (`recorded_at` index).
CREATE TABLE agenda_sends (
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    local_date  date        NOT NULL,
    outcome     text        NOT NULL CHECK (outcome IN ('sent', 'empty', 'skipped', 'failed')),
    detail      text,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, local_date)
);
CREATE INDEX agenda_sends_recorded_at_idx ON agenda_sends (recorded_at);
