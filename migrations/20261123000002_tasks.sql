CREATE TABLE tasks (
    id                uuid        PRIMARY KEY,
    user_id           uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title             text        NOT NULL,
    description       text,
    completed         boolean     NOT NULL DEFAULT false,
    completed_at      timestamptz,
    -- 1 low, 2 medium, 3 high: an integer so sorting by priority is a plain index order.
    priority          smallint    NOT NULL DEFAULT 2,
    tags              text[]      NOT NULL DEFAULT '{}',
    due_at            timestamptz,
    timezone          text        NOT NULL,
    reminder_at       timestamptz,
    recurrence_rule   text,
    recurrence_anchor text        NOT NULL DEFAULT 'due',
    -- A recurring series shares series_id; occurrence_at is the due instant this occurrence
    -- was created for, and never moves, so each occurrence exists once.
    series_id         uuid,
    occurrence_at     timestamptz,
    -- Set, under the row lock, when this occurrence's successor is queued: at most once ever,
    -- however often the task is toggled and however long queue history is kept.
    next_occurrence_queued boolean NOT NULL DEFAULT false,
    deleted_at        timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    version           bigint      NOT NULL DEFAULT 1,
    CONSTRAINT tasks_title_length CHECK (char_length(title) BETWEEN 1 AND 200),
    CONSTRAINT tasks_description_length CHECK (char_length(description) <= 2000),
    CONSTRAINT tasks_priority_range CHECK (priority BETWEEN 1 AND 3),
    CONSTRAINT tasks_tags_count CHECK (cardinality(tags) <= 20),
    CONSTRAINT tasks_reminder_not_after_due CHECK (reminder_at IS NULL OR due_at IS NULL OR reminder_at <= due_at),
    CONSTRAINT tasks_recurrence_needs_due CHECK (recurrence_rule IS NULL OR due_at IS NOT NULL),
    CONSTRAINT tasks_recurrence_anchor_known CHECK (recurrence_anchor IN ('due', 'completion')),
    CONSTRAINT tasks_completed_at_matches CHECK (completed = (completed_at IS NOT NULL)),
    CONSTRAINT tasks_version_positive CHECK (version >= 1),
    CONSTRAINT tasks_series_occurrence_key UNIQUE (series_id, occurrence_at)
);

-- The per-user access paths: the live list newest first, and the trash.
CREATE INDEX tasks_user_live_idx ON tasks (user_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX tasks_user_trash_idx ON tasks (user_id, deleted_at DESC, id DESC) WHERE deleted_at IS NOT NULL;

-- Stored responses for POSTs that carried an Idempotency-Key, replayed for a day.
CREATE TABLE idempotency_keys (
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key         text        NOT NULL,
    fingerprint text        NOT NULL,
    status      smallint    NOT NULL,
    body        jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key),
    CONSTRAINT idempotency_keys_key_length CHECK (char_length(key) BETWEEN 1 AND 255)
);
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);

-- Writes reschedule or cancel a task's pending jobs by task id; keep that lookup off a scan of
-- the whole queue. The queue table belongs to apalis, so only an index is added to it.
CREATE INDEX apalis_jobs_pending_task_idx ON apalis.jobs ((metadata -> 'task_id'))
    WHERE status IN ('Pending', 'Failed');
CREATE INDEX apalis_jobs_pending_owner_idx ON apalis.jobs ((metadata -> 'user_id'))
    WHERE status IN ('Pending', 'Failed');
