-- CalDAV sync of one collection (RFC 6578) must name the tasks that left it, and should name
-- nothing else. A trashed task still carries its project, so the task row says where it was; a
-- task moved to another project, or purged, does not. This records those departures: the
-- collection a task left (NULL: the inbox) and the change number of the move or the purge, so a
-- sync since an older token reports the task as gone there and nowhere else.
--
-- Rows go with the tombstones (the same retention: a token older than that is refused anyway),
-- and with the account, which deletes them itself: like the tombstones, this table has no foreign
-- key to `users`, because inserting a referencing row takes a share lock on the user's row, and a
-- purge or a move must never wait on an account being deleted (see the sync migration).
CREATE TABLE caldav_departures (
    user_id    uuid   NOT NULL,
    task_id    uuid   NOT NULL,
    project_id uuid,
    change_seq bigint NOT NULL,
    PRIMARY KEY (user_id, change_seq, task_id)
);
CREATE INDEX caldav_departures_task_idx ON caldav_departures (user_id, task_id);

-- A move between projects takes a change number (it bumps the version), given by the BEFORE
-- trigger, so NEW.change_seq is the move's number.
CREATE FUNCTION caldav_note_move() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO caldav_departures (user_id, task_id, project_id, change_seq)
    VALUES (NEW.user_id, NEW.id, OLD.project_id, NEW.change_seq)
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_caldav_note_move AFTER UPDATE OF project_id ON tasks
    FOR EACH ROW WHEN (OLD.project_id IS DISTINCT FROM NEW.project_id)
    EXECUTE FUNCTION caldav_note_move();

-- The purge's number is the tombstone's, so the tombstone and the departure are written together.
CREATE OR REPLACE FUNCTION tasks_leave_tombstone() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    seq bigint;
BEGIN
    -- Removing the account removes its tasks too; nobody is left to read their tombstones.
    IF NOT EXISTS (SELECT 1 FROM users WHERE id = OLD.user_id) THEN
        RETURN NULL;
    END IF;
    INSERT INTO task_tombstones (user_id, change_seq, task_id)
    VALUES (OLD.user_id, next_task_change(OLD.user_id), OLD.id)
    RETURNING change_seq INTO seq;
    INSERT INTO caldav_departures (user_id, task_id, project_id, change_seq)
    VALUES (OLD.user_id, OLD.id, OLD.project_id, seq);
    RETURN NULL;
END
$$;
