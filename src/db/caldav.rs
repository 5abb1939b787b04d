//! CalDAV's view of the tasks: which tasks a collection holds, under what names, and what a
//! client said about each that the task does not hold (migration `20261213000001_caldav.sql`).
//!
//! A collection is a project, or the inbox (`None`). Its members are the live tasks in it, less
//! the past occurrences of a series: a series is one resource, its latest occurrence, unless a
//! client gave a past one a name of its own (a completed copy).

use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection, PgExecutor, Row};
use uuid::Uuid;

use super::tasks::{COLUMNS, Task, TaskRow};

/// What a client said about a task beyond its fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub uid: String,
    pub name: String,
    /// Unfolded content lines of the VTODO, CRLF-separated.
    pub extra: String,
    /// Other components, CRLF-separated lines.
    pub others: String,
}

/// A task as a calendar resource.
#[derive(Debug, Clone)]
pub struct Object {
    pub task: Task,
    /// `None`: served under the names made from its id.
    pub identity: Option<Identity>,
}

/// The key a task without an identity row is served under: its series (a series is one
/// resource) or itself.
pub fn generated_key(task: &Task) -> Uuid {
    task.series_id.unwrap_or(task.id)
}

/// `m` is every task of the user with its identity row; `hidden` marks the past occurrences a
/// series' resource stands for.
fn members_sql(filter: &str, tail: &str) -> String {
    members_sql_with("", filter, tail)
}

fn members_sql_with(select: &str, filter: &str, tail: &str) -> String {
    format!(
        "WITH m AS (
             SELECT t.*, o.uid AS dav_uid, o.name AS dav_name, o.extra AS dav_extra,
                    o.others AS dav_others,
                    (o.task_id IS NULL AND t.series_id IS NOT NULL AND EXISTS (
                        SELECT 1 FROM tasks s WHERE s.series_id = t.series_id
                          AND s.occurrence_at > t.occurrence_at)) AS dav_hidden
             FROM tasks t
             LEFT JOIN caldav_objects o ON o.user_id = t.user_id AND o.task_id = t.id
             WHERE t.user_id = $1 {filter}
         )
         SELECT {select}{COLUMNS}, dav_uid, dav_name, dav_extra, dav_others, dav_hidden FROM m {tail}"
    )
}

fn object(row: &PgRow) -> Result<(Object, bool), sqlx::Error> {
    let task = Task::from(TaskRow::from_row(row)?);
    let identity = match row.try_get::<Option<String>, _>("dav_uid")? {
        Some(uid) => Some(Identity {
            uid,
            name: row.try_get("dav_name")?,
            extra: row.try_get("dav_extra")?,
            others: row.try_get("dav_others")?,
        }),
        None => None,
    };
    Ok((Object { task, identity }, row.try_get("dav_hidden")?))
}

/// Up to `limit` members of a collection after the task id `after`, in id order.
pub async fn members(
    conn: impl PgExecutor<'_>,
    user: Uuid,
    project: Option<Uuid>,
    after: Uuid,
    limit: i64,
) -> Result<Vec<Object>, sqlx::Error> {
    // `IS NOT DISTINCT FROM` would not use the project index.
    let in_project = match project {
        Some(_) => "t.project_id = $2",
        None => "t.project_id IS NULL AND $2::uuid IS NULL",
    };
    let sql = members_sql(
        &format!("AND {in_project} AND t.deleted_at IS NULL AND t.id > $3"),
        "WHERE NOT dav_hidden ORDER BY id LIMIT $4",
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(user)
        .bind(project)
        .bind(after)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.iter().map(|row| object(row).map(|(o, _)| o)).collect()
}

/// The live member of a collection served under `name`, if any.
pub async fn find(
    conn: impl PgExecutor<'_>,
    user: Uuid,
    project: Option<Uuid>,
    name: &str,
) -> Result<Option<Object>, sqlx::Error> {
    let generated = name.strip_suffix(".ics").and_then(|key| key.parse::<Uuid>().ok());
    // Each branch of the test finds its rows through an index: the named task by the name's
    // key, the generated one by its id or its series.
    let sql = members_sql(
        "AND t.deleted_at IS NULL
         AND (t.id = ANY(ARRAY(SELECT task_id FROM caldav_objects WHERE user_id = $1 AND name = $2) || $3::uuid)
              OR t.series_id = $3)",
        "WHERE NOT dav_hidden AND project_id IS NOT DISTINCT FROM $4
           AND (dav_name = $2 OR (dav_name IS NULL AND coalesce(series_id, id) = $3))
         ORDER BY (dav_name IS NULL), occurrence_at DESC NULLS LAST LIMIT 1",
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(user)
        .bind(name)
        .bind(generated)
        .bind(project)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(object).transpose().map(|o| o.map(|(o, _)| o))
}

/// The live task of this user a client's UID names, in any collection: by its identity row, or
/// by the UID made from its id.
pub async fn find_by_uid(
    conn: impl PgExecutor<'_>,
    user: Uuid,
    uid: &str,
    uid_host: &str,
) -> Result<Option<Object>, sqlx::Error> {
    let generated = uid
        .strip_suffix(uid_host)
        .and_then(|key| key.strip_suffix('@'))
        .and_then(|key| key.parse::<Uuid>().ok());
    let sql = members_sql(
        "AND t.deleted_at IS NULL
         AND (t.id = ANY(ARRAY(SELECT task_id FROM caldav_objects WHERE user_id = $1 AND uid = $2) || $3::uuid)
              OR t.series_id = $3)",
        "WHERE NOT dav_hidden AND (dav_uid = $2 OR (dav_uid IS NULL AND coalesce(series_id, id) = $3))
         ORDER BY (dav_uid IS NULL), occurrence_at DESC NULLS LAST LIMIT 1",
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(user)
        .bind(uid)
        .bind(generated)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(object).transpose().map(|o| o.map(|(o, _)| o))
}

/// The identity row of a task, live or trashed.
pub async fn identity(
    conn: impl PgExecutor<'_>,
    user: Uuid,
    task: Uuid,
) -> Result<Option<Identity>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT uid, name, extra, others FROM caldav_objects WHERE user_id = $1 AND task_id = $2",
    )
    .bind(user)
    .bind(task)
    .fetch_optional(conn)
    .await?;
    row.map(|row| {
        Ok(Identity {
            uid: row.try_get("uid")?,
            name: row.try_get("name")?,
            extra: row.try_get("extra")?,
            others: row.try_get("others")?,
        })
    })
    .transpose()
}

/// Gives a task its identity, taking the name and UID from any task that is no longer live
/// (a trashed task the client deleted and now puts back).
pub async fn save(
    conn: &mut PgConnection,
    user: Uuid,
    task: Uuid,
    identity: &Identity,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM caldav_objects o WHERE o.user_id = $1 AND o.task_id <> $2 AND (o.uid = $3 OR o.name = $4)
           AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = o.task_id AND t.deleted_at IS NULL)",
    )
    .bind(user)
    .bind(task)
    .bind(&identity.uid)
    .bind(&identity.name)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO caldav_objects (user_id, task_id, uid, name, extra, others)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (user_id, task_id) DO UPDATE
         SET uid = excluded.uid, name = excluded.name, extra = excluded.extra, others = excluded.others",
    )
    .bind(user)
    .bind(task)
    .bind(&identity.uid)
    .bind(&identity.name)
    .bind(&identity.extra)
    .bind(&identity.others)
    .execute(conn)
    .await?;
    Ok(())
}

/// One change a sync report names: the member as it now is, or the name it had.
#[derive(Debug, Clone)]
pub enum Change {
    Member(Box<Object>),
    Gone { name: String },
}

/// A page of a collection's changes, oldest first.
#[derive(Debug, Clone, Default)]
pub struct ChangePage {
    pub changes: Vec<Change>,
    /// The change number of the last change listed: where the next page starts.
    pub last: Option<i64>,
    /// Whether changes may follow `last`: a read filled its limit, so the page is not the end
    /// of the collection's changes even if fewer were listed.
    pub more: bool,
}

/// The changes after `since` in a collection, at most `limit`.
///
/// `since = 0` (a client with no token) lists the collection's members only: it holds nothing
/// that could have gone. After a token, a task is listed when it is a member, or when it left
/// this collection: trashed here (a trashed task keeps its project), or moved away or purged
/// after the token (`caldav_departures`). Other collections' changes are not this one's. A past
/// occurrence the series' resource stands for is never listed.
///
/// Rows that are not listed are filtered in the statements, so a full read means more may
/// follow and `more` is exact.
pub async fn changes(
    conn: &mut PgConnection,
    user: Uuid,
    project: Option<Uuid>,
    since: i64,
    limit: i64,
) -> Result<ChangePage, sqlx::Error> {
    let belongs = match since {
        0 => "NOT dav_hidden AND deleted_at IS NULL AND project_id IS NOT DISTINCT FROM $4",
        _ => {
            "NOT dav_hidden AND (project_id IS NOT DISTINCT FROM $4 OR EXISTS (
                 SELECT 1 FROM caldav_departures d WHERE d.user_id = $1 AND d.task_id = m.id
                   AND d.project_id IS NOT DISTINCT FROM $4 AND d.change_seq > $2))"
        }
    };
    let sql = members_sql_with(
        "change_seq AS dav_seq, ",
        "AND t.change_seq > $2",
        &format!("WHERE {belongs} ORDER BY change_seq LIMIT $3"),
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(user)
        .bind(since)
        .bind(limit)
        .bind(project)
        .fetch_all(&mut *conn)
        .await?;
    let tasks_full = rows.len() as i64 == limit;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let seq = row.try_get::<i64, _>("dav_seq")?;
        let (object, _) = object(row)?;
        let task = &object.task;
        if task.deleted_at.is_none() && task.project_id == project {
            out.push((seq, Change::Member(Box::new(object))));
        } else {
            out.push((seq, Change::Gone { name: name_of(&object) }));
        }
    }
    let mut gone_full = false;
    if since > 0 {
        // Purged tasks that were here, numbered among the rest; not past the last task read when
        // that read was full, since task changes after it are not in this page.
        let gone = sqlx::query(
            "SELECT d.change_seq, d.task_id, o.name FROM task_tombstones d
             LEFT JOIN caldav_objects o ON o.user_id = d.user_id AND o.task_id = d.task_id
             WHERE d.user_id = $1 AND d.change_seq > $2 AND ($4::bigint IS NULL OR d.change_seq <= $4)
               AND EXISTS (SELECT 1 FROM caldav_departures x WHERE x.user_id = $1
                             AND x.task_id = d.task_id AND x.change_seq = d.change_seq
                             AND x.project_id IS NOT DISTINCT FROM $5)
             ORDER BY d.change_seq LIMIT $3",
        )
        .bind(user)
        .bind(since)
        .bind(limit)
        .bind(if tasks_full { out.last().map(|(seq, _)| *seq) } else { None })
        .bind(project)
        .fetch_all(&mut *conn)
        .await?;
        gone_full = gone.len() as i64 == limit;
        for row in &gone {
            let seq: i64 = row.try_get("change_seq")?;
            let task: Uuid = row.try_get("task_id")?;
            let name: Option<String> = row.try_get("name")?;
            out.push((seq, Change::Gone { name: name.unwrap_or_else(|| format!("{task}.ics")) }));
        }
    }
    out.sort_by_key(|(seq, _)| *seq);
    let cap = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = tasks_full || gone_full || out.len() > cap;
    out.truncate(cap);
    let last = out.last().map(|(seq, _)| *seq);
    Ok(ChangePage { changes: out.into_iter().map(|(_, c)| c).collect(), last, more })
}

/// The resource name a task is served under.
pub fn name_of(object: &Object) -> String {
    match &object.identity {
        Some(identity) => identity.name.clone(),
        None => format!("{}.ics", generated_key(&object.task)),
    }
}

/// Drops the identity rows of tasks that are gone and whose tombstones are pruned: nobody can
/// ask for those names again. Departures through `mark` go with the tombstones: a token that old
/// is refused.
pub async fn prune(conn: &mut PgConnection, user: Uuid, mark: i64) -> Result<u64, sqlx::Error> {
    sqlx::query("DELETE FROM caldav_departures WHERE user_id = $1 AND change_seq <= $2")
        .bind(user)
        .bind(mark)
        .execute(&mut *conn)
        .await?;
    Ok(sqlx::query(
        "DELETE FROM caldav_objects o WHERE o.user_id = $1
           AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = o.task_id)
           AND NOT EXISTS (SELECT 1 FROM task_tombstones d WHERE d.user_id = $1 AND d.task_id = o.task_id)",
    )
    .bind(user)
    .execute(conn)
    .await?
    .rows_affected())
}

/// The latest occurrence of one of the user's series with this title and due time, in this
/// collection, that no client's copy names yet: what a client's completed copy stands for.
pub async fn unnamed_occurrence(
    conn: &mut PgConnection,
    user: Uuid,
    project: Option<Uuid>,
    title: &str,
    due: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Task>, sqlx::Error> {
    let row: Option<TaskRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tasks t
         WHERE t.user_id = $1 AND t.project_id IS NOT DISTINCT FROM $2 AND t.title = $3
           AND t.due_at = $4 AND t.series_id IS NOT NULL AND t.deleted_at IS NULL
           -- A past occurrence a client's copy already names is taken; the latest occurrence
           -- holds the series' own name, which the copy does not replace.
           AND NOT (EXISTS (SELECT 1 FROM caldav_objects o WHERE o.user_id = $1 AND o.task_id = t.id)
                    AND EXISTS (SELECT 1 FROM tasks s WHERE s.series_id = t.series_id
                                  AND s.occurrence_at > t.occurrence_at))
         ORDER BY t.occurrence_at DESC LIMIT 1"
    )))
    .bind(user)
    .bind(project)
    .bind(title)
    .bind(due)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Task::from))
}

/// Gives a task a new version (and so a new ETag and change number) when only what a client
/// said beyond its fields changed.
pub async fn touch(conn: &mut PgConnection, task: &Task) -> Result<Task, sqlx::Error> {
    let row: TaskRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE tasks SET version = version + 1, updated_at = now()
         WHERE id = $1 AND user_id = $2 RETURNING {COLUMNS}"
    )))
    .bind(task.id)
    .bind(task.user_id)
    .fetch_one(conn)
    .await?;
    Ok(row.into())
}

/// The UIDs of these tasks as CalDAV shows them, for the RELATED-TO of their subtasks.
pub async fn uids(
    conn: impl PgExecutor<'_>,
    user: Uuid,
    ids: &[Uuid],
    uid_host: &str,
) -> Result<std::collections::HashMap<Uuid, String>, sqlx::Error> {
    let rows: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT t.id, coalesce(o.uid, coalesce(t.series_id, t.id)::text || '@' || $3)
         FROM tasks t LEFT JOIN caldav_objects o ON o.user_id = t.user_id AND o.task_id = t.id
         WHERE t.user_id = $1 AND t.id = ANY($2)",
    )
    .bind(user)
    .bind(ids)
    .bind(uid_host)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().collect())
}
