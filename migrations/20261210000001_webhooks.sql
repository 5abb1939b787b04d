-- Webhooks: endpoints a user registers, and the outbox of messages to each of them.
--
-- Messages are written by triggers on `tasks` and `projects`, in the transaction of the change,
-- the way the change feed is: every writer (web, worker, maintenance, any door) is covered, and a
-- rolled-back write leaves no message. A message keeps a snapshot of the row; the worker renders
-- it into the API's JSON with the same code `GET` uses.

CREATE TABLE webhook_endpoints (
    id                    uuid        PRIMARY KEY,
    user_id               uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    url                   text        NOT NULL,
    description           text        NOT NULL DEFAULT '',
    events                text[]      NOT NULL,
    enabled               boolean     NOT NULL DEFAULT true,
    -- Why the service turned it off: `gone` (the receiver answered 410) or `failing` (days of
    -- failures). Null when enabled, or turned off by its owner.
    disabled_reason       text,
    -- The signing key (the bytes behind `whsec_…`); the previous one signs too until it expires.
    secret                bytea       NOT NULL,
    previous_secret       bytea,
    previous_secret_until timestamptz,
    -- Since when every attempt has failed; cleared by a success.
    failing_since         timestamptz,
    -- The last message number given out: messages are numbered per endpoint in commit order.
    last_seq              bigint      NOT NULL DEFAULT 0,
    -- Whether a delivery job is queued or running for it (see `webhook_wake`).
    job_queued            boolean     NOT NULL DEFAULT false,
    -- One sender at a time per endpoint: whoever holds an unexpired lease.
    lease_until           timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    version               bigint      NOT NULL DEFAULT 1,
    CONSTRAINT webhook_endpoints_url_length CHECK (char_length(url) BETWEEN 1 AND 2000),
    CONSTRAINT webhook_endpoints_description_length CHECK (char_length(description) <= 500),
    CONSTRAINT webhook_endpoints_events_count CHECK (cardinality(events) BETWEEN 1 AND 20)
);

-- The check every task write makes: does this user have an enabled endpoint at all?
CREATE INDEX webhook_endpoints_user_enabled_idx ON webhook_endpoints (user_id) WHERE enabled;
CREATE INDEX webhook_endpoints_user_idx ON webhook_endpoints (user_id, created_at);

-- At most 10 endpoints per account, counted under a lock on the account's row, so concurrent
-- creates from several processes cannot all pass.
CREATE FUNCTION webhook_endpoints_limit() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM users WHERE id = NEW.user_id FOR NO KEY UPDATE;
    IF (SELECT count(*) FROM webhook_endpoints WHERE user_id = NEW.user_id) >= 10 THEN
        RAISE EXCEPTION 'an account holds at most 10 webhook endpoints'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'webhook_endpoints_limit';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER webhook_endpoints_limit BEFORE INSERT ON webhook_endpoints
    FOR EACH ROW EXECUTE FUNCTION webhook_endpoints_limit();

CREATE TABLE webhook_messages (
    id               uuid        PRIMARY KEY,
    endpoint_id      uuid        NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    seq              bigint      NOT NULL,
    event_type       text        NOT NULL,
    -- What `snapshot` is a row of: `task`, `project`, or `none` (a ping).
    resource         text        NOT NULL,
    snapshot         jsonb       NOT NULL,
    -- The user's change number the event carries.
    change_seq       bigint      NOT NULL,
    status           text        NOT NULL DEFAULT 'pending',
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_attempt_at  timestamptz,
    status_code      integer,
    duration_ms      integer,
    response_body    text,
    error            text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_messages_endpoint_seq_key UNIQUE (endpoint_id, seq),
    CONSTRAINT webhook_messages_status CHECK (status IN ('pending', 'succeeded', 'failed'))
);

CREATE INDEX webhook_messages_pending_idx ON webhook_messages (endpoint_id, seq) WHERE status = 'pending';
CREATE INDEX webhook_messages_created_at_idx ON webhook_messages (created_at);

-- Queues a delivery job for the endpoint, due at `at`. The payload is the `WebhookSend` job's
-- JSON (src/jobs/webhook.rs), written here because the writers that need it are triggers.
CREATE FUNCTION webhook_wake(endpoint uuid, owner uuid, at timestamptz) RETURNS void
    LANGUAGE sql AS $$
    INSERT INTO apalis.jobs (id, job_type, job, status, attempts, max_attempts, run_at, priority, metadata)
    VALUES (apalis.generate_ulid(), 'todo.webhook',
            convert_to(json_build_object('endpoint_id', endpoint)::text, 'UTF8'),
            'Pending', 0, 25, at, 0,
            hstore(ARRAY['user_id', 'endpoint_id'], ARRAY[owner::text, endpoint::text]))
$$;

-- Adds one message for `event` to each of the user's enabled endpoints subscribed to it, and
-- wakes each endpoint whose sender is idle. Each endpoint's row is locked until commit, so its
-- message numbers commit in order. Without such an endpoint this is one index probe.
CREATE FUNCTION webhook_emit(owner uuid, event text, kind text, snapshot jsonb, change bigint)
    RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE
    target record;
BEGIN
    FOR target IN
        WITH locked AS (
            SELECT id, job_queued FROM webhook_endpoints
            WHERE user_id = owner AND enabled AND event = ANY (events)
            ORDER BY id FOR NO KEY UPDATE
        )
        UPDATE webhook_endpoints e SET last_seq = e.last_seq + 1, job_queued = true
        FROM locked l WHERE e.id = l.id
        RETURNING e.id, e.last_seq, l.job_queued AS was_queued
    LOOP
        INSERT INTO webhook_messages (id, endpoint_id, seq, event_type, resource, snapshot, change_seq)
        VALUES (gen_random_uuid(), target.id, target.last_seq, event, kind, snapshot, change);
        IF NOT target.was_queued THEN
            PERFORM webhook_wake(target.id, owner, now());
        END IF;
    END LOOP;
END
$$;

CREATE FUNCTION webhook_has_endpoints(owner uuid) RETURNS boolean
    LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE user_id = owner AND enabled)
$$;

CREATE FUNCTION tasks_webhooks() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    event text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        -- Removing the account removes its endpoints too.
        IF NOT webhook_has_endpoints(OLD.user_id) OR NOT EXISTS (SELECT 1 FROM users WHERE id = OLD.user_id) THEN
            RETURN NULL;
        END IF;
        -- A purge: the tombstone trigger (which runs first, by name) took the number.
        PERFORM webhook_emit(OLD.user_id, 'task.deleted', 'task', to_jsonb(OLD) - 'search',
                             (SELECT change_seq FROM task_counts WHERE user_id = OLD.user_id));
        RETURN NULL;
    END IF;
    IF NOT webhook_has_endpoints(NEW.user_id) THEN
        RETURN NULL;
    END IF;
    event := CASE
        WHEN TG_OP = 'INSERT' THEN 'task.created'
        WHEN OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL THEN 'task.deleted'
        WHEN OLD.deleted_at IS NOT NULL AND NEW.deleted_at IS NULL THEN 'task.restored'
        WHEN NOT OLD.completed AND NEW.completed THEN 'task.completed'
        WHEN OLD.completed AND NOT NEW.completed THEN 'task.reopened'
        ELSE 'task.updated'
    END;
    PERFORM webhook_emit(NEW.user_id, event, 'task', to_jsonb(NEW) - 'search', NEW.change_seq);
    RETURN NULL;
END
$$;

-- Client-visible changes only, as the change feed numbers them; a re-announcement (change_seq
-- alone) is not an event.
CREATE TRIGGER tasks_webhooks_insert AFTER INSERT ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_webhooks();
CREATE TRIGGER tasks_webhooks_update AFTER UPDATE ON tasks
    FOR EACH ROW
    WHEN (NEW.version IS DISTINCT FROM OLD.version OR NEW.deleted_at IS DISTINCT FROM OLD.deleted_at)
    EXECUTE FUNCTION tasks_webhooks();
CREATE TRIGGER tasks_webhooks_delete AFTER DELETE ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_webhooks();

CREATE FUNCTION projects_webhooks() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    owner uuid := coalesce(NEW.user_id, OLD.user_id);
    -- Projects take no change number of their own: they carry the newest task change's.
    head bigint;
BEGIN
    IF NOT webhook_has_endpoints(owner) OR NOT EXISTS (SELECT 1 FROM users WHERE id = owner) THEN
        RETURN NULL;
    END IF;
    head := coalesce((SELECT change_seq FROM task_counts WHERE user_id = owner), 0);
    IF TG_OP = 'DELETE' THEN
        PERFORM webhook_emit(owner, 'project.deleted', 'project', to_jsonb(OLD), head);
    ELSIF TG_OP = 'INSERT' THEN
        PERFORM webhook_emit(owner, 'project.created', 'project', to_jsonb(NEW), head);
    ELSE
        PERFORM webhook_emit(owner, 'project.updated', 'project', to_jsonb(NEW), head);
    END IF;
    RETURN NULL;
END
$$;

-- The task counts, which triggers keep, change no version and make no event.
CREATE TRIGGER projects_webhooks_insert AFTER INSERT ON projects
    FOR EACH ROW EXECUTE FUNCTION projects_webhooks();
CREATE TRIGGER projects_webhooks_update AFTER UPDATE ON projects
    FOR EACH ROW WHEN (NEW.version IS DISTINCT FROM OLD.version)
    EXECUTE FUNCTION projects_webhooks();
CREATE TRIGGER projects_webhooks_delete AFTER DELETE ON projects
    FOR EACH ROW EXECUTE FUNCTION projects_webhooks();
