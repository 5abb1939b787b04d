-- A schema ready to shard by user (Citus, distributing by `user_id`): every key and every
-- foreign key between user tables includes `user_id`, so each row, and each check on it, lives
-- with its user. `tests/api/schema_rules.rs` reads the catalog and fails when a table or a
-- constraint breaks a rule; docs/scaling.md says what is left outside the rules and why.
--
-- Where a table's key was its id alone, the key becomes (id, user_id): lookups by id keep their
-- index (id leads), and the separate (id, user_id) unique key that the composite foreign keys
-- referenced is no longer needed, so `tasks` and `projects` each lose an index.

-- tasks ---------------------------------------------------------------------------------------
ALTER TABLE reminder_deliveries DROP CONSTRAINT reminder_deliveries_task_id_fkey;
ALTER TABLE tasks DROP CONSTRAINT tasks_parent_fkey;
ALTER TABLE tasks DROP CONSTRAINT tasks_id_user_key;
ALTER TABLE tasks DROP CONSTRAINT tasks_pkey;
ALTER TABLE tasks ADD CONSTRAINT tasks_pkey PRIMARY KEY (id, user_id);
ALTER TABLE tasks ADD CONSTRAINT tasks_parent_fkey
    FOREIGN KEY (parent_id, user_id) REFERENCES tasks (id, user_id) ON DELETE CASCADE;
ALTER TABLE tasks DROP CONSTRAINT tasks_series_occurrence_key;
ALTER TABLE tasks ADD CONSTRAINT tasks_series_occurrence_key UNIQUE (series_id, occurrence_at, user_id);

ALTER TABLE reminder_deliveries DROP CONSTRAINT reminder_deliveries_pkey;
ALTER TABLE reminder_deliveries ADD CONSTRAINT reminder_deliveries_pkey PRIMARY KEY (task_id, reminder_at, user_id);
ALTER TABLE reminder_deliveries ADD CONSTRAINT reminder_deliveries_task_id_fkey
    FOREIGN KEY (task_id, user_id) REFERENCES tasks (id, user_id) ON DELETE CASCADE;

-- projects ------------------------------------------------------------------------------------
ALTER TABLE tasks DROP CONSTRAINT tasks_project_fkey;
ALTER TABLE calendar_feeds DROP CONSTRAINT calendar_feeds_project_fkey;
ALTER TABLE projects DROP CONSTRAINT projects_id_user_key;
ALTER TABLE projects DROP CONSTRAINT projects_pkey;
ALTER TABLE projects ADD CONSTRAINT projects_pkey PRIMARY KEY (id, user_id);
ALTER TABLE tasks ADD CONSTRAINT tasks_project_fkey
    FOREIGN KEY (project_id, user_id) REFERENCES projects (id, user_id) ON DELETE SET NULL (project_id);
ALTER TABLE calendar_feeds ADD CONSTRAINT calendar_feeds_project_fkey
    FOREIGN KEY (project_id, user_id) REFERENCES projects (id, user_id) ON DELETE CASCADE;

-- Keys found by a secret: the secret still leads the key, so the lookup keeps its index.
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_pkey;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_pkey PRIMARY KEY (id, user_id);
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_selector_key;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_selector_key UNIQUE (selector, user_id);

ALTER TABLE calendar_feeds DROP CONSTRAINT calendar_feeds_pkey;
ALTER TABLE calendar_feeds ADD CONSTRAINT calendar_feeds_pkey PRIMARY KEY (id, user_id);
ALTER TABLE calendar_feeds DROP CONSTRAINT calendar_feeds_digest_key;
ALTER TABLE calendar_feeds ADD CONSTRAINT calendar_feeds_digest_key UNIQUE (digest, user_id);

ALTER TABLE event_tickets DROP CONSTRAINT event_tickets_pkey;
ALTER TABLE event_tickets ADD CONSTRAINT event_tickets_pkey PRIMARY KEY (digest, user_id);

-- webhooks ------------------------------------------------------------------------------------
ALTER TABLE webhook_messages DROP CONSTRAINT webhook_messages_endpoint_id_fkey;
ALTER TABLE webhook_endpoints DROP CONSTRAINT webhook_endpoints_pkey;
ALTER TABLE webhook_endpoints ADD CONSTRAINT webhook_endpoints_pkey PRIMARY KEY (id, user_id);

ALTER TABLE webhook_messages ADD COLUMN user_id uuid;
UPDATE webhook_messages m SET user_id = e.user_id FROM webhook_endpoints e WHERE e.id = m.endpoint_id;
DELETE FROM webhook_messages WHERE user_id IS NULL;
ALTER TABLE webhook_messages ALTER COLUMN user_id SET NOT NULL;
ALTER TABLE webhook_messages ADD CONSTRAINT webhook_messages_endpoint_id_fkey
    FOREIGN KEY (endpoint_id, user_id) REFERENCES webhook_endpoints (id, user_id) ON DELETE CASCADE;
ALTER TABLE webhook_messages DROP CONSTRAINT webhook_messages_pkey;
ALTER TABLE webhook_messages ADD CONSTRAINT webhook_messages_pkey PRIMARY KEY (id, user_id);
ALTER TABLE webhook_messages DROP CONSTRAINT webhook_messages_endpoint_seq_key;
ALTER TABLE webhook_messages ADD CONSTRAINT webhook_messages_endpoint_seq_key UNIQUE (endpoint_id, seq, user_id);

-- The trigger's insert now names the owner too; otherwise as in 20261210000001_webhooks.sql.
CREATE OR REPLACE FUNCTION webhook_emit(owner uuid, event text, kind text, snapshot jsonb, change bigint)
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
        FROM locked l WHERE e.id = l.id AND e.user_id = owner
        RETURNING e.id, e.last_seq, l.job_queued AS was_queued
    LOOP
        INSERT INTO webhook_messages (id, user_id, endpoint_id, seq, event_type, resource, snapshot, change_seq)
        VALUES (gen_random_uuid(), owner, target.id, target.last_seq, event, kind, snapshot, change);
        IF NOT target.was_queued THEN
            PERFORM webhook_wake(target.id, owner, now());
        END IF;
    END LOOP;
END
$$;
