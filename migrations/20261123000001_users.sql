-- Accounts. Local users have a password hash; users first seen through an external issuer's
-- token have an external_id and may have no email.
CREATE TABLE users (
    id              uuid        PRIMARY KEY,
    email           text,
    password_hash   text,
    external_id     text,
    name            text,
    timezone        text        NOT NULL DEFAULT 'UTC',
    email_reminders boolean     NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_has_identity CHECK (password_hash IS NOT NULL OR external_id IS NOT NULL),
    CONSTRAINT users_local_has_email CHECK (password_hash IS NULL OR email IS NOT NULL)
);

-- Emails are unique case-insensitively; registration races resolve here, as a 409.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE UNIQUE INDEX users_external_id_key ON users (external_id);

-- Logged-out tokens, kept until they would have expired anyway; the worker purges the rest.
CREATE TABLE revoked_tokens (
    token_id   text        PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX revoked_tokens_expires_at_idx ON revoked_tokens (expires_at);
