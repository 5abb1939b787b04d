-- The change feed. Every change to a user's tasks takes that user's next change number, in the
-- transaction that makes it. The number comes from the user's `task_counts` row, incremented
-- under its row lock, so the next writer for the same user (from any process) waits for this
-- one to commit before it can take a number: numbers commit in order, and a rolled-back write
-- leaves no gap because its increment rolls back with it.

-- Lock order, everywhere: the user's row (key share, or for update to delete the account), then
-- task rows, then this counts row, then a project. A foreign key from task_counts to users would
-- take a key-share lock on the user's row from inside a task write, after its task rows (an
-- update of a row this transaction already changed re-checks the key), the reverse of the order
-- account deletion takes. So the counts row has none, and account deletion removes it itself.
ALTER TABLE task_counts DROP CONSTRAINT task_counts_user_id_fkey;

ALTER TABLE task_counts
    ADD COLUMN change_seq bigint NOT NULL DEFAULT 0,
    -- The newest change number whose tombstone was pruned: a client that synced before it may
    -- have missed a delete, and must start again.
    ADD COLUMN changes_pruned_through bigint NOT NULL DEFAULT 0;

-- The task's latest change number. A trashed task is its own tombstone until it is purged.
ALTER TABLE tasks ADD COLUMN change_seq bigint NOT NULL DEFAULT 0;

-- Existing tasks get numbers in the order they were last changed.
UPDATE tasks t SET change_seq = n.seq
FROM (SELECT id, row_number() OVER (PARTITION BY user_id ORDER BY updated_at, id) AS seq FROM tasks) n
WHERE t.id = n.id;
INSERT INTO task_counts AS c (user_id, change_seq)
SELECT user_id, max(change_seq) FROM tasks GROUP BY user_id
ON CONFLICT (user_id) DO UPDATE SET change_seq = EXCLUDED.change_seq;

CREATE INDEX tasks_user_change_idx ON tasks (user_id, change_seq);

-- Purged tasks: the id and the number of the purge, kept for the configured retention. No
-- foreign key to users, for the reason above; account deletion removes the user's tombstones.
CREATE TABLE task_tombstones (
    user_id    uuid        NOT NULL,
    change_seq bigint      NOT NULL,
    task_id    uuid        NOT NULL,
    deleted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, change_seq)
);
CREATE INDEX task_tombstones_deleted_at_idx ON task_tombstones (deleted_at);

-- Takes the user's next change number. Locks the user's counts row until commit.
CREATE FUNCTION next_task_change(owner uuid) RETURNS bigint
    LANGUAGE sql AS $$
    INSERT INTO task_counts AS c (user_id, change_seq) VALUES (owner, 1)
    ON CONFLICT (user_id) DO UPDATE SET change_seq = c.change_seq + 1
    RETURNING change_seq
$$;

CREATE FUNCTION tasks_number_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    -- An insert's foreign-key check takes the user's row after this trigger; take it before the
    -- counts row instead, in the order account deletion takes them.
    IF TG_OP = 'INSERT' THEN
        PERFORM 1 FROM users WHERE id = NEW.user_id FOR KEY SHARE;
    END IF;
    NEW.change_seq := next_task_change(NEW.user_id);
    RETURN NEW;
END
$$;

-- Every client-visible change bumps `version` (it is the ETag); trash and restore do too. A
-- write of `change_seq` alone re-announces a task (see the maintenance job). Bookkeeping that
-- clients never see, such as `next_occurrence_queued`, takes no number.
CREATE TRIGGER tasks_number_insert BEFORE INSERT ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_number_change();
CREATE TRIGGER tasks_number_update BEFORE UPDATE ON tasks
    FOR EACH ROW
    WHEN (NEW.version IS DISTINCT FROM OLD.version
          OR NEW.deleted_at IS DISTINCT FROM OLD.deleted_at
          OR NEW.change_seq IS DISTINCT FROM OLD.change_seq)
    EXECUTE FUNCTION tasks_number_change();

CREATE FUNCTION tasks_leave_tombstone() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    -- Removing the account removes its tasks too; nobody is left to read their tombstones.
    IF NOT EXISTS (SELECT 1 FROM users WHERE id = OLD.user_id) THEN
        RETURN NULL;
    END IF;
    INSERT INTO task_tombstones (user_id, change_seq, task_id)
    VALUES (OLD.user_id, next_task_change(OLD.user_id), OLD.id);
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_leave_tombstone AFTER DELETE ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_leave_tombstone();

-- One notification per statement and user, carrying only the user and the newest change
-- number; listeners read what they need. Delivered on commit, in commit order.
CREATE FUNCTION tasks_notify_changes() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('task_changes', c.user_id::text || ' ' || c.change_seq)
    FROM task_counts c
    WHERE c.user_id IN (SELECT DISTINCT user_id FROM changed_rows);
    RETURN NULL;
END
$$;

-- An update notifies only for rows that took a number: bookkeeping clients never see wakes no one.
CREATE FUNCTION tasks_notify_updates() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('task_changes', c.user_id::text || ' ' || c.change_seq)
    FROM task_counts c
    WHERE c.user_id IN (SELECT DISTINCT n.user_id FROM new_rows n JOIN old_rows o ON o.id = n.id
                        WHERE n.change_seq <> o.change_seq);
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_notify_insert AFTER INSERT ON tasks
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION tasks_notify_changes();
CREATE TRIGGER tasks_notify_update AFTER UPDATE ON tasks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tasks_notify_updates();
CREATE TRIGGER tasks_notify_delete AFTER DELETE ON tasks
    REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION tasks_notify_changes();

-- Single-use tickets for `GET /events?ticket=`, for browsers' EventSource, which cannot send a
-- header. Only a digest is stored. A ticket carries the token it was made with, so the stream
-- ends when that token expires or is revoked.
CREATE TABLE event_tickets (
    digest           bytea       PRIMARY KEY,
    user_id          uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_id         text        NOT NULL,
    token_expires_at timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    CONSTRAINT event_tickets_token_id_length CHECK (char_length(token_id) <= 200)
);
CREATE INDEX event_tickets_user_idx ON event_tickets (user_id, expires_at);
CREATE INDEX event_tickets_expires_at_idx ON event_tickets (expires_at);
