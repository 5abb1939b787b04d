-- A webhook job names the endpoint's owner as well as the endpoint, so that the sender's every
-- statement can name the user (docs/scaling.md: no statement routed to every shard). Jobs
-- queued before this have no owner in the payload; the sender looks it up for those.
CREATE OR REPLACE FUNCTION webhook_wake(endpoint uuid, owner uuid, at timestamptz) RETURNS void
    LANGUAGE sql AS $$
    INSERT INTO apalis.jobs (id, job_type, job, status, attempts, max_attempts, run_at, priority, metadata)
    VALUES (apalis.generate_ulid(), 'todo.webhook',
            convert_to(json_build_object('endpoint_id', endpoint, 'user_id', owner)::text, 'UTF8'),
            'Pending', 0, 25, at, 0,
            hstore(ARRAY['user_id', 'endpoint_id'], ARRAY[owner::text, endpoint::text]))
$$;
