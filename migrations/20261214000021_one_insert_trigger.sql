-- A create's bookkeeping in one trigger call (issue 25, "counters and change numbers touched in
-- one statement").
--
-- An INSERT into `tasks` used to fire, after the row: the webhook row trigger (a PL/pgSQL call and
-- a SQL function call per row, which for a user without endpoints only found none), then four
-- statement triggers in name order, each a PL/pgSQL call over the same transition table: the live
-- count's upsert on `task_counts`, the NOTIFY (which read that `task_counts` row again), the
-- projects' counts, and the parents' subtask counts. One statement trigger now does the same work
-- in the same order: webhooks (a per-row event only for users with an endpoint), the counts'
-- upsert returning the change number the NOTIFY carries, then projects and parents only when the
-- statement has rows that have one. Updates and deletes keep their triggers.
CREATE FUNCTION tasks_after_insert() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    r record;
    notified bigint;
BEGIN
    IF EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.enabled
               AND w.user_id IN (SELECT DISTINCT user_id FROM new_rows)) THEN
        FOR r IN SELECT * FROM new_rows n WHERE webhook_has_endpoints(n.user_id) ORDER BY n.change_seq LOOP
            PERFORM webhook_emit(r.user_id, 'task.created', 'task', to_jsonb(r) - 'search', r.change_seq);
        END LOOP;
    END IF;

    WITH counted AS (
        INSERT INTO task_counts AS c (user_id, live, trashed)
        SELECT user_id, count(*) FILTER (WHERE deleted_at IS NULL), count(*) FILTER (WHERE deleted_at IS NOT NULL)
        FROM new_rows GROUP BY user_id
        ON CONFLICT (user_id) DO UPDATE SET live = c.live + EXCLUDED.live, trashed = c.trashed + EXCLUDED.trashed
        RETURNING c.user_id, c.change_seq
    )
    SELECT count(pg_notify('task_changes', counted.user_id::text || ' ' || counted.change_seq))
    INTO notified FROM counted;

    IF EXISTS (SELECT 1 FROM new_rows WHERE project_id IS NOT NULL) THEN
        UPDATE projects p SET total_tasks = p.total_tasks + d.total, open_tasks = p.open_tasks + d.open
        FROM (SELECT project_id, count(*) FILTER (WHERE deleted_at IS NULL) AS total,
                     count(*) FILTER (WHERE deleted_at IS NULL AND NOT completed) AS open
              FROM new_rows WHERE project_id IS NOT NULL GROUP BY project_id) d
        WHERE p.id = d.project_id;
    END IF;

    IF EXISTS (SELECT 1 FROM new_rows WHERE parent_id IS NOT NULL) THEN
        UPDATE tasks p SET subtask_count = p.subtask_count + d.total,
                           completed_subtask_count = p.completed_subtask_count + d.done,
                           updated_at = now(), version = p.version + 1
        FROM (SELECT parent_id, count(*) FILTER (WHERE deleted_at IS NULL) AS total,
                     count(*) FILTER (WHERE deleted_at IS NULL AND completed) AS done
              FROM new_rows WHERE parent_id IS NOT NULL GROUP BY parent_id
              HAVING count(*) FILTER (WHERE deleted_at IS NULL) > 0) d
        WHERE p.id = d.parent_id;
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER tasks_webhooks_insert ON tasks;
DROP TRIGGER tasks_count_insert ON tasks;
DROP TRIGGER tasks_notify_insert ON tasks;
DROP TRIGGER tasks_project_counts_insert ON tasks;
DROP TRIGGER tasks_subtask_counts_insert ON tasks;
DROP FUNCTION tasks_count_insert();
DROP FUNCTION tasks_project_counts_insert();

CREATE TRIGGER tasks_after_insert AFTER INSERT ON tasks
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tasks_after_insert();
