-- Full-text search and the per-user access paths of the task list (see docs/list-access-paths.md).
--
-- Search uses the 'simple' configuration over unaccented text: every language is split into
-- words the same way and no word is stemmed as if it were English, so "café" matches "cafe",
-- and Cyrillic or Greek words match as whole words. The price is no stemming ("meetings" does not
-- match "meeting"), which the list softens by matching the last word typed as a prefix.
CREATE EXTENSION IF NOT EXISTS unaccent;
-- Lets one GIN index hold user_id next to tags or words, so a filter never leaves the user's rows.
CREATE EXTENSION IF NOT EXISTS btree_gin;

-- unaccent() is only STABLE (its dictionary could be swapped); pinning the dictionary makes a
-- wrapper that may be used in a generated column and an index.
CREATE FUNCTION todo_unaccent(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT public.unaccent('public.unaccent'::regdictionary, $1) $$;

ALTER TABLE tasks ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('simple'::regconfig, todo_unaccent(title)), 'A')
    || setweight(to_tsvector('simple'::regconfig, todo_unaccent(coalesce(description, ''))), 'B')
) STORED;

CREATE INDEX tasks_user_search_idx ON tasks USING gin (user_id, search) WHERE deleted_at IS NULL;
CREATE INDEX tasks_user_tags_idx ON tasks USING gin (user_id, tags) WHERE deleted_at IS NULL;

-- One btree per sort key, each ending in id so pages have a strict order and a keyset cursor is a
-- single range scan. Descending orders scan these backwards. Missing due dates sort last in both
-- orders, which is why due_at has two indexes over opposite sentinels.
CREATE INDEX tasks_user_updated_idx ON tasks (user_id, updated_at, id) WHERE deleted_at IS NULL;
CREATE INDEX tasks_user_due_asc_idx ON tasks (user_id, (coalesce(due_at, 'infinity'::timestamptz)), id)
    WHERE deleted_at IS NULL;
CREATE INDEX tasks_user_due_desc_idx ON tasks (user_id, (coalesce(due_at, '-infinity'::timestamptz)), id)
    WHERE deleted_at IS NULL;
CREATE INDEX tasks_user_priority_idx ON tasks (user_id, priority, id) WHERE deleted_at IS NULL;
CREATE INDEX tasks_user_title_idx ON tasks (user_id, (lower(title)), id) WHERE deleted_at IS NULL;

-- Each user's live and trashed task counts, kept by a trigger whatever writes the row (a web
-- process, the worker, a purge, an account's deletion), so an unfiltered list's `total` is one
-- row read instead of a count over up to 50,000 index entries.
CREATE TABLE task_counts (
    user_id uuid   PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    live    bigint NOT NULL DEFAULT 0,
    trashed bigint NOT NULL DEFAULT 0
);

INSERT INTO task_counts (user_id, live, trashed)
SELECT user_id, count(*) FILTER (WHERE deleted_at IS NULL), count(*) FILTER (WHERE deleted_at IS NOT NULL)
FROM tasks GROUP BY user_id;

-- Statement-level, over transition tables: one update per user per statement, so deleting an
-- account's 50,000 tasks (or importing many) touches its count row once, not 50,000 times.
CREATE FUNCTION tasks_count_insert() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO task_counts AS c (user_id, live, trashed)
    SELECT user_id, count(*) FILTER (WHERE deleted_at IS NULL), count(*) FILTER (WHERE deleted_at IS NOT NULL)
    FROM new_rows GROUP BY user_id
    ON CONFLICT (user_id) DO UPDATE SET live = c.live + EXCLUDED.live, trashed = c.trashed + EXCLUDED.trashed;
    RETURN NULL;
END
$$;

CREATE FUNCTION tasks_count_delete() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    UPDATE task_counts c SET live = c.live - d.live, trashed = c.trashed - d.trashed
    FROM (SELECT user_id, count(*) FILTER (WHERE deleted_at IS NULL) AS live,
                 count(*) FILTER (WHERE deleted_at IS NOT NULL) AS trashed
          FROM old_rows GROUP BY user_id) d
    WHERE c.user_id = d.user_id;
    RETURN NULL;
END
$$;

-- Any update: rows that moved in or out of the trash (or, should one ever, to another user)
-- change the counts; an ordinary edit nets to zero per user and writes nothing.
CREATE FUNCTION tasks_count_update() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO task_counts AS c (user_id, live, trashed)
    SELECT user_id, sum(live), sum(trashed)
    FROM (SELECT user_id, -(deleted_at IS NULL)::int AS live, -(deleted_at IS NOT NULL)::int AS trashed
          FROM old_rows
          UNION ALL
          SELECT user_id, (deleted_at IS NULL)::int, (deleted_at IS NOT NULL)::int FROM new_rows) d
    GROUP BY user_id
    HAVING sum(live) <> 0 OR sum(trashed) <> 0
    ON CONFLICT (user_id) DO UPDATE SET live = c.live + EXCLUDED.live, trashed = c.trashed + EXCLUDED.trashed;
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tasks_count_insert();
CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tasks_count_delete();
CREATE TRIGGER tasks_count_update AFTER UPDATE ON tasks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tasks_count_update();
