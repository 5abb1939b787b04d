-- Verified addresses before any reminder (issue 20).
--
-- Accounts that exist before this migration are marked verified, so nobody's reminders stop on
-- upgrade; accounts created afterwards start unverified (the column default flips below).
ALTER TABLE users ADD COLUMN email_verified boolean NOT NULL DEFAULT true;
ALTER TABLE users ALTER COLUMN email_verified SET DEFAULT false;

-- An email change waits here until the new address is verified; the current address (and its
-- reminders) stays until then. Uniqueness is enforced when it becomes `email`.
ALTER TABLE users ADD COLUMN pending_email text;

-- Verification emails sent in the current hour-long window, for the resend limit. A fixed window
-- on the account's own row: bounded, atomic under the row lock, and shared by every web process.
ALTER TABLE users
    ADD COLUMN verification_window_start timestamptz,
    ADD COLUMN verification_window_sends integer NOT NULL DEFAULT 0;

-- Single-use link tokens that have been used, kept until they would have expired anyway; the
-- maintenance job purges the rest.
CREATE TABLE used_link_tokens (
    token_id   uuid        PRIMARY KEY,
    purpose    text        NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX used_link_tokens_expires_at_idx ON used_link_tokens (expires_at);
