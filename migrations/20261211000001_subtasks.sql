-- Subtasks. A task may sit under another task of its owner (`parent_id`), at most four levels
-- deep and 200 live children per task; a live subtask is in its parent's project and under a
-- live parent, and never recurs. The web process checks all of this first, to name the field;
-- the rules below hold whatever the code does, under writes from several processes.

ALTER TABLE tasks
    ADD COLUMN parent_id uuid,
    -- Manual order among siblings; ties in creation order.
    ADD COLUMN position integer NOT NULL DEFAULT 0,
    -- Kept by the triggers below, like a project's counts: never counted on read. Live children
    -- only; completed ones in the second.
    ADD COLUMN subtask_count integer NOT NULL DEFAULT 0,
    ADD COLUMN completed_subtask_count integer NOT NULL DEFAULT 0,
    -- The task whose deletion took this one to the trash with it (itself, for the task deleted),
    -- so a restore brings back the subtree as it was trashed and not children trashed before.
    ADD COLUMN trashed_with uuid,
    ADD CONSTRAINT tasks_id_user_key UNIQUE (id, user_id),
    ADD CONSTRAINT tasks_parent_not_self CHECK (parent_id <> id),
    ADD CONSTRAINT tasks_position_range CHECK (position BETWEEN 0 AND 1000000),
    ADD CONSTRAINT tasks_subtask_not_recurring CHECK (parent_id IS NULL OR recurrence_rule IS NULL);

-- With user_id in the key no task can sit under another user's task. Purging a task purges
-- its subtree.
ALTER TABLE tasks ADD CONSTRAINT tasks_parent_fkey
    FOREIGN KEY (parent_id, user_id) REFERENCES tasks (id, user_id) ON DELETE CASCADE;
CREATE INDEX tasks_parent_idx ON tasks (parent_id, position, created_at, id) WHERE parent_id IS NOT NULL;

-- The key of the user's tree lock: every write that changes the shape of a user's task tree
-- (a parent set or changed, a subtree completed, trashed, restored or moved) holds it, taken at
-- the user's step of the lock order (after the user's row, before any task row). Writers that
-- meet a tree after locking a task row only try it, and start again if another holds it.
CREATE FUNCTION task_tree_lock_key(owner uuid) RETURNS bigint
    LANGUAGE sql IMMUTABLE AS $$ SELECT hashtextextended('task_tree:' || owner::text, 0) $$;

-- Statement-level, over transition tables, like the project counts: one update per parent per
-- statement. The parent's version moves (its ETag describes its body, which shows the counts),
-- so the change feed carries it.
CREATE FUNCTION tasks_subtask_counts() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    -- Statement triggers fire for statements that change no row too, including the updates
    -- below: only a statement that touched a subtask goes on, so the recursion ends.
    IF TG_OP = 'INSERT' THEN
        IF NOT EXISTS (SELECT 1 FROM new_rows WHERE parent_id IS NOT NULL) THEN
            RETURN NULL;
        END IF;
        UPDATE tasks p SET subtask_count = p.subtask_count + d.total,
                           completed_subtask_count = p.completed_subtask_count + d.done,
                           updated_at = now(), version = p.version + 1
        FROM (SELECT parent_id, count(*) FILTER (WHERE deleted_at IS NULL) AS total,
                     count(*) FILTER (WHERE deleted_at IS NULL AND completed) AS done
              FROM new_rows WHERE parent_id IS NOT NULL GROUP BY parent_id
              HAVING count(*) FILTER (WHERE deleted_at IS NULL) > 0) d
        WHERE p.id = d.parent_id;
    ELSIF TG_OP = 'DELETE' THEN
        IF NOT EXISTS (SELECT 1 FROM old_rows WHERE parent_id IS NOT NULL) THEN
            RETURN NULL;
        END IF;
        UPDATE tasks p SET subtask_count = p.subtask_count - d.total,
                           completed_subtask_count = p.completed_subtask_count - d.done,
                           updated_at = now(), version = p.version + 1
        FROM (SELECT parent_id, count(*) FILTER (WHERE deleted_at IS NULL) AS total,
                     count(*) FILTER (WHERE deleted_at IS NULL AND completed) AS done
              FROM old_rows WHERE parent_id IS NOT NULL GROUP BY parent_id
              HAVING count(*) FILTER (WHERE deleted_at IS NULL) > 0) d
        WHERE p.id = d.parent_id;
    ELSE
        IF NOT EXISTS (SELECT 1 FROM old_rows WHERE parent_id IS NOT NULL)
           AND NOT EXISTS (SELECT 1 FROM new_rows WHERE parent_id IS NOT NULL) THEN
            RETURN NULL;
        END IF;
        UPDATE tasks p SET subtask_count = p.subtask_count + d.total,
                           completed_subtask_count = p.completed_subtask_count + d.done,
                           updated_at = now(), version = p.version + 1
        FROM (SELECT parent_id, sum(total) AS total, sum(done) AS done
              FROM (SELECT parent_id, -(deleted_at IS NULL)::int AS total,
                           -(deleted_at IS NULL AND completed)::int AS done
                    FROM old_rows WHERE parent_id IS NOT NULL
                    UNION ALL
                    SELECT parent_id, (deleted_at IS NULL)::int, (deleted_at IS NULL AND completed)::int
                    FROM new_rows WHERE parent_id IS NOT NULL) x
              GROUP BY parent_id
              HAVING sum(total) <> 0 OR sum(done) <> 0) d
        WHERE p.id = d.parent_id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_subtask_counts_insert AFTER INSERT ON tasks
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tasks_subtask_counts();
CREATE TRIGGER tasks_subtask_counts_delete AFTER DELETE ON tasks
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tasks_subtask_counts();
CREATE TRIGGER tasks_subtask_counts_update AFTER UPDATE ON tasks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tasks_subtask_counts();

-- The tree's rules, checked at commit (when a statement that moves a whole subtree has
-- finished) for each task whose parent, project or trash state changed. The check holds the
-- user's tree lock, so two transactions that each pass alone (A under B, B under A) cannot both
-- commit: the second to get here waits for nothing (a try) and retries if the first still
-- holds it, and sees its commit otherwise.
CREATE FUNCTION tasks_check_tree() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    t tasks%ROWTYPE;
    p tasks%ROWTYPE;
    cursor_id uuid;
    ancestors int := 0;
    height int;
BEGIN
    SELECT * INTO t FROM tasks WHERE id = NEW.id;
    IF NOT FOUND OR (t.parent_id IS NULL AND NOT EXISTS (SELECT 1 FROM tasks WHERE parent_id = t.id)) THEN
        RETURN NULL;
    END IF;
    IF NOT pg_try_advisory_xact_lock(task_tree_lock_key(t.user_id)) THEN
        RAISE EXCEPTION 'another write is changing this task tree' USING ERRCODE = '40001';
    END IF;
    -- Fresh reads from here: the lock is held, and every other tree writer waits for it.
    SELECT * INTO t FROM tasks WHERE id = NEW.id;
    IF EXISTS (SELECT 1 FROM tasks c WHERE c.parent_id = t.id AND c.deleted_at IS NULL
               AND (t.deleted_at IS NOT NULL OR c.project_id IS DISTINCT FROM t.project_id)) THEN
        RAISE EXCEPTION 'a live subtask must be under a live parent in its project'
            USING ERRCODE = '23514', CONSTRAINT = 'tasks_parent_same_project';
    END IF;
    IF t.parent_id IS NOT NULL THEN
        SELECT * INTO p FROM tasks WHERE id = t.parent_id;
        IF t.deleted_at IS NULL AND (p.deleted_at IS NOT NULL OR p.project_id IS DISTINCT FROM t.project_id) THEN
            RAISE EXCEPTION 'a live subtask must be under a live parent in its project'
                USING ERRCODE = '23514', CONSTRAINT = 'tasks_parent_same_project';
        END IF;
        IF (SELECT count(*) FROM tasks WHERE parent_id = p.id AND deleted_at IS NULL) > 200 THEN
            RAISE EXCEPTION 'a task has at most 200 subtasks'
                USING ERRCODE = '23514', CONSTRAINT = 'tasks_parent_children';
        END IF;
        cursor_id := t.parent_id;
        WHILE cursor_id IS NOT NULL LOOP
            ancestors := ancestors + 1;
            IF cursor_id = t.id THEN
                RAISE EXCEPTION 'a task cannot be its own ancestor'
                    USING ERRCODE = '23514', CONSTRAINT = 'tasks_parent_cycle';
            END IF;
            IF ancestors > 3 THEN
                RAISE EXCEPTION 'subtasks nest at most four levels deep'
                    USING ERRCODE = '23514', CONSTRAINT = 'tasks_parent_depth';
            END IF;
            SELECT parent_id INTO cursor_id FROM tasks WHERE id = cursor_id;
        END LOOP;
    END IF;
    WITH RECURSIVE below (id, level) AS (
        SELECT t.id, 1
        UNION ALL
        SELECT c.id, b.level + 1 FROM tasks c JOIN below b ON c.parent_id = b.id WHERE b.level < 6
    ) SELECT max(level) INTO height FROM below;
    IF ancestors + height > 4 THEN
        RAISE EXCEPTION 'subtasks nest at most four levels deep'
            USING ERRCODE = '23514', CONSTRAINT = 'tasks_parent_depth';
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER tasks_check_tree_insert AFTER INSERT ON tasks
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NEW.parent_id IS NOT NULL)
    EXECUTE FUNCTION tasks_check_tree();
CREATE CONSTRAINT TRIGGER tasks_check_tree_update AFTER UPDATE ON tasks
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NEW.parent_id IS DISTINCT FROM OLD.parent_id
          OR NEW.project_id IS DISTINCT FROM OLD.project_id
          OR NEW.deleted_at IS DISTINCT FROM OLD.deleted_at)
    EXECUTE FUNCTION tasks_check_tree();
