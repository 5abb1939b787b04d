-- Personal API tokens. The secret is never stored: `selector` (the first characters of its
-- random part) finds the row, and the SHA-256 `digest` of the whole token is compared in
-- constant time. Revoked rows stay, so a revoked token answers `token_revoked` rather than
-- looking unknown; they are not live, so they count against no cap.
CREATE TABLE api_tokens (
    id           uuid        PRIMARY KEY,
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text        NOT NULL,
    scopes       text[]      NOT NULL,
    selector     text        NOT NULL,
    digest       bytea       NOT NULL,
    -- What a list shows to tell tokens apart: the prefix and the last four characters.
    hint         text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz,
    CONSTRAINT api_tokens_selector_key UNIQUE (selector),
    CONSTRAINT api_tokens_name_length CHECK (char_length(name) BETWEEN 1 AND 100),
    CONSTRAINT api_tokens_scopes_known CHECK (
        cardinality(scopes) >= 1
        AND scopes <@ ARRAY['tasks:read', 'tasks:write', 'projects:read', 'projects:write', 'webhooks', 'account']::text[]
    ),
    CONSTRAINT api_tokens_digest_length CHECK (octet_length(digest) = 32)
);

-- Listing and the live-token cap read one user's tokens.
CREATE INDEX api_tokens_user_id_idx ON api_tokens (user_id, created_at);
