-- The delivery log is purged one user at a time (src/db/maintenance.rs), so that no statement
-- spans two users' rows: the index that finds a user's old messages leads with the user.
CREATE INDEX webhook_messages_user_created_idx ON webhook_messages (user_id, created_at);
DROP INDEX webhook_messages_created_at_idx;
