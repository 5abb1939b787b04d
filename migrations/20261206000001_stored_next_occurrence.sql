-- A recurring task's next due time is computed when the task is written and stored, so reads
-- do no rule stepping at all (a costly rule once let one user's reads stall a web process).
-- `series_start` is the series' DTSTART: the rule is expanded from it in local wall time, so an
-- occurrence moved by a daylight-saving gap does not drag the rest of the series with it.
--
-- Existing recurring tasks are filled in by `todo migrate` after the migrations run (stepping a
-- rule needs the application's code): rows with a rule and no `series_start` are the ones left.
ALTER TABLE tasks
    ADD COLUMN series_start timestamptz,
    ADD COLUMN next_occurrence_at timestamptz;

CREATE INDEX tasks_series_start_missing_idx ON tasks (id)
    WHERE recurrence_rule IS NOT NULL AND series_start IS NULL;

-- Why a completed occurrence's successor is not made yet. The worker sets it when the account
-- holds its maximum of tasks (occurrences obey the cap like every create); maintenance makes the
-- occurrence once there is room, and clears it.
ALTER TABLE tasks ADD COLUMN series_paused text
    CONSTRAINT tasks_series_paused_reason CHECK (series_paused IN ('task_limit_reached'));
CREATE INDEX tasks_series_paused_idx ON tasks (user_id) WHERE series_paused IS NOT NULL;
