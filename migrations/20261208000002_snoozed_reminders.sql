-- A reminder snoozed from its email may fire after the task's due time (a task due at 09:00
-- whose 08:55 reminder is snoozed by an hour). The API still refuses to *set* a reminder after
-- the due time (`TaskFields::check`); the database no longer does, so a snooze can be stored.
ALTER TABLE tasks DROP CONSTRAINT tasks_reminder_not_after_due;
