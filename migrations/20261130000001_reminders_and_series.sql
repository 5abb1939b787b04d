-- Where an occurrence sits in its series, counted from 1 at the series' first occurrence, so a
-- rule's COUNT ends the series however its occurrences were stepped. Every existing recurring
-- task is the first of its series: no successor has ever been created before this migration.
ALTER TABLE tasks ADD COLUMN series_index integer;
UPDATE tasks SET series_index = 1 WHERE series_id IS NOT NULL;
ALTER TABLE tasks ADD CONSTRAINT tasks_series_index_matches
    CHECK ((series_id IS NULL) = (series_index IS NULL) AND (series_index IS NULL OR series_index >= 1));

-- One row per (task, reminder time): the delivery history clients read, and the record that
-- keeps a reminder from being sent twice. The worker holds this row's lock while it sends.
CREATE TABLE reminder_deliveries (
    task_id     uuid        NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    reminder_at timestamptz NOT NULL,
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status      text        NOT NULL DEFAULT 'pending',
    attempts    integer     NOT NULL DEFAULT 0,
    last_error  text,
    -- Why nothing was sent, for status 'skipped'.
    skip_reason text,
    message_id  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz,
    CONSTRAINT reminder_deliveries_pkey PRIMARY KEY (task_id, reminder_at),
    CONSTRAINT reminder_deliveries_status_known CHECK (status IN ('pending', 'sent', 'failed', 'skipped')),
    CONSTRAINT reminder_deliveries_sent_has_time CHECK ((status = 'sent') = (sent_at IS NOT NULL))
);
CREATE INDEX reminder_deliveries_user_idx ON reminder_deliveries (user_id);
