-- A deleted account of an external issuer is remembered for a while, so that the issuer's tokens
-- minted before the deletion cannot bring it back as a new account on their next request.
CREATE TABLE deleted_external_accounts (
    external_id  text PRIMARY KEY,
    deleted_at   timestamptz NOT NULL,
    forget_after timestamptz NOT NULL
);
CREATE INDEX deleted_external_accounts_forget_after ON deleted_external_accounts (forget_after);

-- The domain bounds the rule at 500 characters; this backs it up. NOT VALID: rows written before
-- the bound existed stay readable, and every new write is checked.
ALTER TABLE tasks
    ADD CONSTRAINT tasks_recurrence_rule_length CHECK (char_length(recurrence_rule) <= 500) NOT VALID;
