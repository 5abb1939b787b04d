-- CalDAV: what a calendar client said about a task that the task itself does not hold.
--
-- A task without a row here is served as `{series or task id}.ics` with the UID
-- `{series or task id}@{host}`. A row keeps the resource name and UID a client chose, and the
-- lines of its VTODO this service does not model (X- properties, DTSTART, URL, extra alarms,
-- overrides), so that syncing through this server loses nothing.
--
-- A recurring series is one resource, as CalDAV clients keep it: the series' latest occurrence.
-- When an occurrence is made, the row moves on to it (the trigger below), so the resource keeps
-- its name and UID whichever process made the occurrence.
--
-- Rows are not removed with their task: a purged task's tombstone is reported under the name
-- the client knows, and the maintenance job drops the row with the tombstone.
CREATE TABLE caldav_objects (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    task_id uuid NOT NULL,
    uid     text NOT NULL,
    name    text NOT NULL,
    -- Unfolded content lines, CRLF-separated, written back into the VTODO as they came.
    extra   text NOT NULL DEFAULT '',
    -- Other components of the object (overridden instances), written back after the VTODO.
    others  text NOT NULL DEFAULT '',
    PRIMARY KEY (user_id, task_id),
    CONSTRAINT caldav_objects_uid_key UNIQUE (user_id, uid),
    CONSTRAINT caldav_objects_name_key UNIQUE (user_id, name),
    CONSTRAINT caldav_objects_uid_length CHECK (octet_length(uid) BETWEEN 1 AND 255),
    CONSTRAINT caldav_objects_name_length CHECK (octet_length(name) BETWEEN 1 AND 255),
    CONSTRAINT caldav_objects_extra_length CHECK (octet_length(extra) + octet_length(others) <= 262144)
);

CREATE FUNCTION caldav_objects_follow_series() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    UPDATE caldav_objects o SET task_id = NEW.id
    FROM tasks prev
    WHERE prev.user_id = NEW.user_id AND prev.series_id = NEW.series_id
      AND prev.occurrence_at < NEW.occurrence_at
      AND o.user_id = NEW.user_id AND o.task_id = prev.id
      -- Only from the occurrence just before: an older one with a name of its own (a client's
      -- completed copy) keeps it.
      AND NOT EXISTS (SELECT 1 FROM tasks mid
                      WHERE mid.series_id = NEW.series_id
                        AND mid.occurrence_at > prev.occurrence_at
                        AND mid.occurrence_at < NEW.occurrence_at);
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_caldav_follow_series AFTER INSERT ON tasks
    FOR EACH ROW WHEN (NEW.series_index > 1)
    EXECUTE FUNCTION caldav_objects_follow_series();
