-- Projects: a user's separate lists. A task's project_id is null for the inbox.
CREATE TABLE projects (
    id          uuid        PRIMARY KEY,
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        text        NOT NULL,
    color       text,
    position    integer     NOT NULL DEFAULT 0,
    archived    boolean     NOT NULL DEFAULT false,
    -- Kept by the triggers below, so reading a project never counts its tasks.
    open_tasks  integer     NOT NULL DEFAULT 0,
    total_tasks integer     NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    version     bigint      NOT NULL DEFAULT 1,
    CONSTRAINT projects_name_length CHECK (char_length(name) BETWEEN 1 AND 100),
    CONSTRAINT projects_color_format CHECK (color ~ '^#[0-9a-f]{6}$'),
    CONSTRAINT projects_version_positive CHECK (version >= 1),
    -- The target of the tasks' composite foreign key: a task's project is its owner's.
    CONSTRAINT projects_id_user_key UNIQUE (id, user_id)
);
CREATE UNIQUE INDEX projects_user_name_key ON projects (user_id, lower(name));
CREATE INDEX projects_user_position_idx ON projects (user_id, position, created_at, id);

ALTER TABLE tasks ADD COLUMN project_id uuid;
-- With user_id in the key, no task can point at another user's project, whatever the code does.
-- Deleting a project empties it first (its tasks go to the trash); should a row go some other
-- way, its tasks fall back to the inbox rather than block or vanish.
ALTER TABLE tasks ADD CONSTRAINT tasks_project_fkey
    FOREIGN KEY (project_id, user_id) REFERENCES projects (id, user_id) ON DELETE SET NULL (project_id);
-- One project's live tasks in the list's default order, and the foreign key's lookups.
CREATE INDEX tasks_user_project_idx ON tasks (user_id, project_id, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX tasks_project_idx ON tasks (project_id) WHERE project_id IS NOT NULL;

-- Statement-level, over transition tables, like task_counts: one update per project per
-- statement. total_tasks counts live (untrashed) tasks, open_tasks the live ones not completed.
CREATE FUNCTION tasks_project_counts_insert() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    UPDATE projects p SET total_tasks = p.total_tasks + d.total, open_tasks = p.open_tasks + d.open
    FROM (SELECT project_id, count(*) FILTER (WHERE deleted_at IS NULL) AS total,
                 count(*) FILTER (WHERE deleted_at IS NULL AND NOT completed) AS open
          FROM new_rows WHERE project_id IS NOT NULL GROUP BY project_id) d
    WHERE p.id = d.project_id;
    RETURN NULL;
END
$$;

CREATE FUNCTION tasks_project_counts_delete() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    UPDATE projects p SET total_tasks = p.total_tasks - d.total, open_tasks = p.open_tasks - d.open
    FROM (SELECT project_id, count(*) FILTER (WHERE deleted_at IS NULL) AS total,
                 count(*) FILTER (WHERE deleted_at IS NULL AND NOT completed) AS open
          FROM old_rows WHERE project_id IS NOT NULL GROUP BY project_id) d
    WHERE p.id = d.project_id;
    RETURN NULL;
END
$$;

CREATE FUNCTION tasks_project_counts_update() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    UPDATE projects p SET total_tasks = p.total_tasks + d.total, open_tasks = p.open_tasks + d.open
    FROM (SELECT project_id, sum(total) AS total, sum(open) AS open
          FROM (SELECT project_id, -(deleted_at IS NULL)::int AS total,
                       -(deleted_at IS NULL AND NOT completed)::int AS open
                FROM old_rows WHERE project_id IS NOT NULL
                UNION ALL
                SELECT project_id, (deleted_at IS NULL)::int, (deleted_at IS NULL AND NOT completed)::int
                FROM new_rows WHERE project_id IS NOT NULL) x
          GROUP BY project_id
          HAVING sum(total) <> 0 OR sum(open) <> 0) d
    WHERE p.id = d.project_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_project_counts_insert AFTER INSERT ON tasks
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tasks_project_counts_insert();
CREATE TRIGGER tasks_project_counts_delete AFTER DELETE ON tasks
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tasks_project_counts_delete();
CREATE TRIGGER tasks_project_counts_update AFTER UPDATE ON tasks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tasks_project_counts_update();
