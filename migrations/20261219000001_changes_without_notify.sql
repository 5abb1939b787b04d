-- Writes to `tasks` no longer send `NOTIFY task_changes` (issue 25).
--
-- PostgreSQL takes one database-wide lock from a notifying transaction's pre-commit to the end of
-- its commit, so notifying commits cannot overlap: measured with `bench/schema-ab` (64 clients,
-- 8 s, three rounds alternating), the real-schema INSERT without its NOTIFY ran 1.69x as fast
-- (1.60-1.80x per round) at the same CPU per insert (0.94x). A web process's own writes now wake
-- its streams directly, and each web process finds other processes' changes by reading the change
-- numbers of the users whose streams it holds, from `task_counts`, every `sync.poll_interval_ms`
-- (src/web/events/heads.rs); the number is taken under the counts row's lock, so a user's numbers
-- become visible in commit order, as the notifications did.
--
-- The insert trigger is 20261214000021_one_insert_trigger.sql's without its NOTIFY; updates and
-- deletes lose their notifying statement triggers. `auth_changes` keeps its NOTIFY: it is rare
-- (logout, revocation, account deletion) and every process must hear it at once.
CREATE OR REPLACE FUNCTION tasks_after_insert() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    IF EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.enabled
               AND w.user_id IN (SELECT DISTINCT user_id FROM new_rows)) THEN
        FOR r IN SELECT * FROM new_rows n WHERE webhook_has_endpoints(n.user_id) ORDER BY n.change_seq LOOP
            PERFORM webhook_emit(r.user_id, 'task.created', 'task', to_jsonb(r) - 'search', r.change_seq);
        END LOOP;
    END IF;

    INSERT INTO task_counts AS c (user_id, live, trashed)
    SELECT user_id, count(*) FILTER (WHERE deleted_at IS NULL), count(*) FILTER (WHERE deleted_at IS NOT NULL)
    FROM new_rows GROUP BY user_id
    ON CONFLICT (user_id) DO UPDATE SET live = c.live + EXCLUDED.live, trashed = c.trashed + EXCLUDED.trashed;

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


DROP TRIGGER tasks_notify_update ON tasks;
DROP TRIGGER tasks_notify_delete ON tasks;
DROP FUNCTION tasks_notify_updates();
DROP FUNCTION tasks_notify_changes();
