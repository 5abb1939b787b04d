-- Calendar subscription feeds: a secret URL per feed, read by calendar apps without any other
-- credential. The secret is never stored: its SHA-256 `digest` finds the row (a secret of 256
-- random bits needs no slow hash). Revoking deletes the row, so a revoked secret is as unknown
-- as one never issued.
CREATE TABLE calendar_feeds (
    id         uuid        PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       text        NOT NULL,
    -- Null: every project and the inbox. Deleting the project deletes the feed (it then answers
    -- 404): a feed never widens to more than its owner chose to publish.
    project_id uuid,
    digest     bytea       NOT NULL,
    -- What a list shows to tell feeds apart: the prefix and the last four characters.
    hint       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT calendar_feeds_digest_key UNIQUE (digest),
    CONSTRAINT calendar_feeds_digest_length CHECK (octet_length(digest) = 32),
    CONSTRAINT calendar_feeds_name_length CHECK (char_length(name) BETWEEN 1 AND 100),
    -- With user_id in the key, a feed can only ever cover its owner's project.
    CONSTRAINT calendar_feeds_project_fkey FOREIGN KEY (project_id, user_id)
        REFERENCES projects (id, user_id) ON DELETE CASCADE
);

CREATE INDEX calendar_feeds_user_id_idx ON calendar_feeds (user_id, created_at);
CREATE INDEX calendar_feeds_project_id_idx ON calendar_feeds (project_id) WHERE project_id IS NOT NULL;
