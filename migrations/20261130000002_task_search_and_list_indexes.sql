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

CREATE FUNCTION tasks_count_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO task_counts AS c (user_id, live, trashed)
        VALUES (NEW.user_id, (NEW.deleted_at IS NULL)::int, (NEW.deleted_at IS NOT NULL)::int)
        ON CONFLICT (user_id) DO UPDATE SET live = c.live + EXCLUDED.live, trashed = c.trashed + EXCLUDED.trashed;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE task_counts
        SET live = live - (OLD.deleted_at IS NULL)::int, trashed = trashed - (OLD.deleted_at IS NOT NULL)::int
        WHERE user_id = OLD.user_id;
    ELSIF (OLD.deleted_at IS NULL) <> (NEW.deleted_at IS NULL) THEN
        UPDATE task_counts
        SET live = live + CASE WHEN NEW.deleted_at IS NULL THEN 1 ELSE -1 END,
            trashed = trashed + CASE WHEN NEW.deleted_at IS NULL THEN -1 ELSE 1 END
        WHERE user_id = NEW.user_id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_count_change AFTER INSERT OR DELETE OR UPDATE OF deleted_at ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_count_change();
