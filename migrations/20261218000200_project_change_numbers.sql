-- A project's webhook message takes the user's next change number, as a task's change does.
--
-- It used to carry the newest task change's number, so two changes to one project with no task
-- write between carried the same number, and a receiver keeping only a higher number per id (the
-- README's recipe) dropped the second. Taking a number from the user's counter makes every
-- project change's number its own and strictly higher than any before it, for tasks and projects
-- alike. The numbers stay what they were for the change feed, the event stream and CalDAV: they
-- read tasks and tombstones above a position and never assumed that every number names one (a
-- task changed twice already leaves a gap), and the head only ever rises.
--
-- Only users with an enabled endpoint take a number here: nobody else ever sees it, and their
-- project writes keep away from the counter's row lock. Project writers take the counter before
-- the project (src/commands/projects.rs), the lock order every task write keeps.
CREATE OR REPLACE FUNCTION projects_webhooks() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    owner uuid := coalesce(NEW.user_id, OLD.user_id);
    change bigint;
BEGIN
    IF NOT webhook_has_endpoints(owner) OR NOT EXISTS (SELECT 1 FROM users WHERE id = owner) THEN
        RETURN NULL;
    END IF;
    change := next_task_change(owner);
    IF TG_OP = 'DELETE' THEN
        PERFORM webhook_emit(owner, 'project.deleted', 'project', to_jsonb(OLD), change);
    ELSIF TG_OP = 'INSERT' THEN
        PERFORM webhook_emit(owner, 'project.created', 'project', to_jsonb(NEW), change);
    ELSE
        PERFORM webhook_emit(owner, 'project.updated', 'project', to_jsonb(NEW), change);
    END IF;
    RETURN NULL;
END
$$;
