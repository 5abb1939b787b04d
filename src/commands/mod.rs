//! Task writes. Each command runs as one transaction: lock, check preconditions, write, keep the
//! task's jobs in step, store the idempotent response, commit. The web process's per-user actors
//! are the only callers, so one user's commands run one at a time in each process; the row locks
//! and version checks here keep the invariants when several processes write at once.

mod bulk;
mod changes;
mod projects;
pub mod stepping;

pub use bulk::{BatchItem, BulkOp};
pub use changes::TaskChanges;
pub use projects::ProjectChanges;

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::db::idempotency::{self, StoredResponse};
use crate::db::projects::{Project, ProjectFields};
use crate::db::tasks::{self, Derived, NewTask, Series};
use crate::db::users;
use crate::domain::Task;
use crate::domain::{Invalid, TaskFields, TimeZone};
use crate::jobs::{self, EnqueueError, task_jobs};

/// The settings commands obey.
#[derive(Debug, Clone, Copy)]
pub struct CommandSettings {
    pub idempotency_ttl_hours: u32,
    /// Tasks one account may hold, trashed ones included.
    pub max_tasks_per_user: u32,
    /// How long a deleted external account is remembered.
    pub remember_deleted_external_secs: u64,
}

impl CommandSettings {
    pub fn new(settings: &crate::config::Settings) -> Self {
        Self {
            idempotency_ttl_hours: settings.tasks.idempotency_ttl_hours,
            max_tasks_per_user: settings.tasks.max_per_user,
            remember_deleted_external_secs: settings.auth.external.deleted_memory_secs,
        }
    }
}

/// A write-time `Idempotency-Key` and the fingerprint of the request that carried it.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub key: String,
    pub fingerprint: String,
}

/// The `If-Match` versions that may be overwritten; `None` means unconditional.
#[derive(Debug, Clone, Default)]
pub struct IfMatch(pub Option<Vec<i64>>);

impl IfMatch {
    fn check(&self, current_version: i64) -> Result<(), WriteError> {
        match &self.0 {
            Some(versions) if !versions.contains(&current_version) => Err(WriteError::PreconditionFailed),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Command {
    Create {
        task: TaskFields<Option<TimeZone>>,
        idempotency: Option<Idempotency>,
    },
    Update {
        id: Uuid,
        changes: TaskChanges,
        if_match: IfMatch,
    },
    Replace {
        id: Uuid,
        task: TaskFields<Option<TimeZone>>,
        if_match: IfMatch,
    },
    Delete {
        id: Uuid,
        if_match: IfMatch,
    },
    Restore {
        id: Uuid,
        if_match: IfMatch,
        idempotency: Option<Idempotency>,
    },
    Toggle {
        id: Uuid,
        if_match: IfMatch,
        idempotency: Option<Idempotency>,
    },
    SetCompleted {
        id: Uuid,
        completed: bool,
        if_match: IfMatch,
    },
    /// Removes the account with its tasks and queued jobs.
    DeleteAccount,
    CreateProject {
        project: ProjectFields,
        idempotency: Option<Idempotency>,
    },
    UpdateProject {
        id: Uuid,
        changes: ProjectChanges,
        if_match: IfMatch,
    },
    /// Moves the project's tasks to the trash and removes it.
    DeleteProject {
        id: Uuid,
        if_match: IfMatch,
    },
    /// Task operations applied in order as one transaction: all of them, or none.
    Bulk {
        operations: Vec<BulkOp>,
        idempotency: Option<Idempotency>,
    },
}

impl Command {
    fn idempotency(&self) -> Option<&Idempotency> {
        match self {
            Self::Create { idempotency, .. }
            | Self::Restore { idempotency, .. }
            | Self::Toggle { idempotency, .. }
            | Self::CreateProject { idempotency, .. }
            | Self::Bulk { idempotency, .. } => idempotency.as_ref(),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub enum Outcome {
    Created(Task),
    Updated(Task),
    /// A task moved to the trash, as it now is.
    Trashed(Task),
    Deleted,
    ProjectCreated(Project),
    ProjectUpdated(Project),
    /// Each operation's result, in order.
    Batch(Vec<BatchItem>),
    /// The stored first response to a repeated `Idempotency-Key`.
    Replayed {
        status: u16,
        body: serde_json::Value,
    },
}

impl Outcome {
    /// The status and body an idempotent request stores for its repeats.
    fn stored(&self) -> Result<Option<(u16, serde_json::Value)>, serde_json::Error> {
        let stored = match self {
            Self::Created(task) => (201, serde_json::to_value(task)?),
            Self::Updated(task) => (200, serde_json::to_value(task)?),
            Self::ProjectCreated(project) => (201, serde_json::to_value(project)?),
            Self::ProjectUpdated(project) => (200, serde_json::to_value(project)?),
            Self::Batch(items) => (200, serde_json::json!({ "results": items })),
            Self::Trashed(_) | Self::Deleted | Self::Replayed { .. } => return Ok(None),
        };
        Ok(Some(stored))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("task not found")]
    NotFound,
    #[error("If-Match does not match the current version")]
    PreconditionFailed,
    #[error("invalid task")]
    Invalid(Vec<Invalid>),
    #[error("Idempotency-Key reused with a different request")]
    IdempotencyKeyReused,
    #[error("another request stored this Idempotency-Key first")]
    IdempotencyRace,
    #[error("the account holds its maximum of {0} tasks")]
    TaskLimit(u32),
    #[error("the account holds its maximum of {0} projects")]
    ProjectLimit(i64),
    #[error("a project with this name exists")]
    ProjectNameTaken,
    /// A command produced an outcome its caller cannot use: a bug, not the client's fault.
    #[error("unexpected outcome: {0}")]
    Unexpected(String),
    /// Operation `index` of a batch failed; nothing of the batch was applied.
    #[error("operation {index}: {error}")]
    InBatch { index: usize, error: Box<WriteError> },
    #[error(transparent)]
    Database(sqlx::Error),
    #[error(transparent)]
    Jobs(#[from] EnqueueError),
}

impl From<Invalid> for WriteError {
    fn from(e: Invalid) -> Self {
        Self::Invalid(vec![e])
    }
}

impl From<sqlx::Error> for WriteError {
    /// The database's own checks back up the domain's; if one fires, name the field it guards.
    fn from(err: sqlx::Error) -> Self {
        let field = match &err {
            sqlx::Error::Database(db) => match db.constraint() {
                Some("tasks_title_length") => Some(("title", "must be 1–200 characters")),
                Some("tasks_description_length") => Some(("description", "must be at most 2000 characters")),
                Some("tasks_tags_count") => Some(("tags", "at most 20 tags")),
                Some("tasks_reminder_not_after_due") => Some(("reminder_at", "must not be after due_at")),
                Some("tasks_recurrence_needs_due") => Some(("recurrence_rule", "needs due_at")),
                Some("tasks_project_fkey") => Some(("project_id", "is not one of your projects")),
                Some("tasks_recurrence_rule_length") => {
                    Some(("recurrence_rule", "must be at most 500 characters"))
                }
                // The account was deleted while this write was on its way.
                Some("tasks_user_id_fkey" | "projects_user_id_fkey") => return Self::NotFound,
                Some("projects_user_name_key") => return Self::ProjectNameTaken,
                _ => None,
            },
            _ => None,
        };
        match field {
            Some((field, message)) => Self::Invalid(vec![Invalid::new(field, message)]),
            None => Self::Database(err),
        }
    }
}

/// Runs one command for `user` in its own transaction.
pub async fn execute(
    pool: &PgPool,
    settings: CommandSettings,
    user: Uuid,
    command: &Command,
) -> Result<Outcome, WriteError> {
    match run(pool, settings, user, command).await {
        // Another process committed the same key meanwhile; running again replays its answer.
        Err(WriteError::IdempotencyRace) => run(pool, settings, user, command).await,
        // The locks are taken in one order everywhere; should two writes still deadlock, the
        // loser was rolled back whole, and running it once more is safe.
        Err(WriteError::Database(sqlx::Error::Database(db))) if db.code().as_deref() == Some("40P01") => {
            run(pool, settings, user, command).await
        }
        other => other,
    }
}

async fn run(
    pool: &PgPool,
    settings: CommandSettings,
    user: Uuid,
    command: &Command,
) -> Result<Outcome, WriteError> {
    if let Command::Create { task, idempotency: None } = command
        && let Some(fields) = simple_create(task)
    {
        return create_in_one_statement(pool, settings, user, fields).await;
    }
    let ttl_hours = settings.idempotency_ttl_hours;
    let mut tx = pool.begin().await?;
    // Storing the response key-share locks the account (the key's foreign key). Take that lock
    // first, before any task row: account deletion locks the account and then its tasks, and
    // taking them in the other order deadlocks against it.
    // A batch also inserts (its creates take the same key-share lock) after locking task rows,
    // and a create into a project locks the user's counter and the project before its insert
    // takes the user's row: both take the user's row first instead.
    let inserts_after_locking = matches!(command, Command::Bulk { .. } | Command::Create { .. });
    if (command.idempotency().is_some() || inserts_after_locking)
        && !users::lock_key_share(&mut tx, user).await?
    {
        return Err(WriteError::NotFound);
    }
    if let Some(idem) = command.idempotency()
        && let Some(stored) = idempotency::find(&mut tx, user, &idem.key, ttl_hours).await?
    {
        return match stored.fingerprint == idem.fingerprint {
            true => Ok(Outcome::Replayed { status: stored.status, body: stored.body }),
            false => Err(WriteError::IdempotencyKeyReused),
        };
    }
    let outcome = apply(&mut tx, settings, user, command).await?;
    if let Some(idem) = command.idempotency()
        && let Some((status, body)) = outcome.stored().map_err(EnqueueError::Encode)?
    {
        let response = StoredResponse { fingerprint: idem.fingerprint.clone(), status, body };
        if !idempotency::store(&mut tx, user, &idem.key, &response, ttl_hours).await? {
            tx.rollback().await?;
            return Err(WriteError::IdempotencyRace);
        }
    }
    tx.commit().await?;
    Ok(outcome)
}

async fn apply(
    conn: &mut PgConnection,
    settings: CommandSettings,
    user: Uuid,
    command: &Command,
) -> Result<Outcome, WriteError> {
    match command {
        Command::Bulk { operations, .. } => bulk::apply(conn, settings, user, operations).await,
        Command::CreateProject { project, .. } => projects::create(conn, user, project).await,
        Command::UpdateProject { id, changes, if_match } => {
            projects::update(conn, user, *id, changes, if_match).await
        }
        Command::DeleteProject { id, if_match } => projects::delete(conn, user, *id, if_match).await,
        other => apply_task(conn, settings, user, other, &mut None).await,
    }
}

/// One task command. `zone` caches the owner's default time zone across a batch.
async fn apply_task(
    conn: &mut PgConnection,
    settings: CommandSettings,
    user: Uuid,
    command: &Command,
    zone: &mut Option<TimeZone>,
) -> Result<Outcome, WriteError> {
    match command {
        Command::Create { task, .. } => {
            let created = create(conn, user, task, zone).await?;
            check_task_limit(conn, settings, user).await?;
            Ok(Outcome::Created(created))
        }
        Command::Update { id, changes, if_match } => {
            let current = locked_live(conn, user, *id, if_match).await?;
            let fields = changes.clone().apply(&current)?;
            rewrite(conn, &current, fields).await
        }
        Command::Replace { id, task, if_match } => {
            let current = locked_live(conn, user, *id, if_match).await?;
            let fields = task.clone().with_default_timezone(default_timezone(conn, user, zone).await?);
            rewrite(conn, &current, fields).await
        }
        Command::Delete { id, if_match } => {
            let current = locked_live(conn, user, *id, if_match).await?;
            let trashed = tasks::move_to_trash(conn, current.id).await?;
            task_jobs::sync(conn, Some(&current), &trashed).await?;
            Ok(Outcome::Trashed(trashed))
        }
        Command::Restore { id, if_match, .. } => {
            let current = tasks::lock_trashed(conn, user, *id).await?.ok_or(WriteError::NotFound)?;
            if_match.check(current.version)?;
            let restored = tasks::restore(conn, current.id).await?;
            task_jobs::sync(conn, Some(&current), &restored).await?;
            Ok(Outcome::Updated(restored))
        }
        Command::Toggle { id, if_match, .. } => {
            let current = locked_live(conn, user, *id, if_match).await?;
            Ok(Outcome::Updated(set_completed(conn, &current, !current.completed).await?))
        }
        Command::SetCompleted { id, completed, if_match } => {
            let current = locked_live(conn, user, *id, if_match).await?;
            // Completing a completed task changes nothing: the version (and other clients'
            // If-Match) stays, and no job is touched.
            if current.completed == *completed {
                return Ok(Outcome::Updated(current));
            }
            Ok(Outcome::Updated(set_completed(conn, &current, *completed).await?))
        }
        Command::DeleteAccount => {
            if !tasks::lock_account(conn, user).await? {
                return Err(WriteError::NotFound);
            }
            jobs::cancel_for_owner(conn, user).await?;
            users::delete(conn, user, settings.remember_deleted_external_secs).await?;
            Ok(Outcome::Deleted)
        }
        Command::Bulk { .. }
        | Command::CreateProject { .. }
        | Command::UpdateProject { .. }
        | Command::DeleteProject { .. } => {
            Err(WriteError::Invalid(vec![Invalid::new("operations", "is not a task operation")]))
        }
    }
}

/// A create that queues no job and needs no time zone to be checked (no reminder, no rule), and
/// carries no idempotency key: it can be one statement, with no transaction around it.
fn simple_create(task: &TaskFields<Option<TimeZone>>) -> Option<&TaskFields<Option<TimeZone>>> {
    // A project must be locked before the insert (see `lock_target_project`): not one statement.
    (task.reminder_at.is_none() && task.recurrence_rule.is_none() && task.project_id.is_none())
        .then_some(task)
}

/// Locks the project a task is being put into, after the user's change counter and before the
/// task's write: the order a project's deletion takes them in (task rows, counter, project), so
/// the two cannot deadlock across processes. A project that is not the caller's (or was just
/// deleted) is a 422 on `project_id`.
async fn lock_target_project(
    conn: &mut PgConnection,
    user: Uuid,
    project: Option<Uuid>,
) -> Result<(), WriteError> {
    let Some(project) = project else { return Ok(()) };
    crate::db::changes::lock_head(conn, user).await?;
    match crate::db::projects::lock(conn, user, project).await? {
        Some(_) => Ok(()),
        None => Err(WriteError::Invalid(vec![Invalid::new("project_id", "is not one of your projects")])),
    }
}

/// One round trip: the insert fills in the owner's time zone and refuses to pass the task limit
/// itself. (Several web processes creating for one user at the limit at once may overshoot it
/// by one task each: the count it reads is the last committed one.)
async fn create_in_one_statement(
    pool: &PgPool,
    settings: CommandSettings,
    user: Uuid,
    task: &TaskFields<Option<TimeZone>>,
) -> Result<Outcome, WriteError> {
    // Without a rule the zone plays no part in the checks, so any stands in for the owner's,
    // which the statement itself reads.
    let fields = task.clone().with_default_timezone(TimeZone::UTC);
    fields.check().map_err(WriteError::Invalid)?;
    let derived = Derived { completed_at: fields.completed.then(now), next_occurrence_at: None };
    let row = NewTask { owner_zone: true, ..NewTask::new(Uuid::now_v7(), fields, None, derived) };
    let mut conn = pool.acquire().await?;
    let max = settings.max_tasks_per_user;
    if let Some(created) = tasks::insert(&mut conn, user, &[row], Some(max)).await?.pop() {
        return Ok(Outcome::Created(created));
    }
    // Nothing inserted: say why (the rare path pays the second round trip).
    match tasks::user_timezone(&mut conn, user).await? {
        Some(_) => Err(WriteError::TaskLimit(max)),
        None => Err(WriteError::NotFound),
    }
}

/// Inserts a new task and queues its jobs.
async fn create(
    conn: &mut PgConnection,
    user: Uuid,
    task: &TaskFields<Option<TimeZone>>,
    zone: &mut Option<TimeZone>,
) -> Result<Task, WriteError> {
    let fields = task.clone().with_default_timezone(default_timezone(conn, user, zone).await?);
    fields.check().map_err(WriteError::Invalid)?;
    lock_target_project(conn, user, fields.project_id).await?;
    let id = Uuid::now_v7();
    let series = Series::first(id, &fields);
    let derived = derive(&fields, series, fields.completed.then(now), true).await?;
    let row = NewTask::new(id, fields, series, derived);
    // Nothing inserted means the account is gone.
    let created = tasks::insert(conn, user, &[row], None).await?.pop().ok_or(WriteError::NotFound)?;
    task_jobs::sync(conn, None, &created).await?;
    Ok(created)
}

/// Completes or reopens a locked task, with what its series does next.
async fn set_completed(conn: &mut PgConnection, current: &Task, completed: bool) -> Result<Task, WriteError> {
    let completed_at = completed.then(now);
    let next = stepping::next_due(stepping::SeriesAt::of_task(current), completed_at, false)
        .await
        .map_err(|e| WriteError::Unexpected(e.to_string()))??;
    let derived = Derived { completed_at, next_occurrence_at: next };
    let updated = tasks::set_completed(conn, current.id, completed, derived).await?;
    task_jobs::sync(conn, Some(current), &updated).await?;
    Ok(updated)
}

/// What a write of `fields` derives: its completion time as given, and the due time of the
/// series' next occurrence, stepped off the async threads. `check_rule`: the series (re)starts
/// here, so it must be shown to go on.
async fn derive(
    fields: &TaskFields,
    series: Option<Series>,
    completed_at: Option<DateTime<Utc>>,
    check_rule: bool,
) -> Result<Derived, WriteError> {
    let next = stepping::next_due(stepping::SeriesAt::of_fields(fields, series), completed_at, check_rule)
        .await
        .map_err(|e| WriteError::Unexpected(e.to_string()))??;
    Ok(Derived { completed_at, next_occurrence_at: next })
}

/// The time a write stamps, in the database's precision (microseconds) so what is stored is
/// what the step saw.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Checked after inserting: the count row is then locked by this transaction, so concurrent
/// creates from several processes cannot all pass the check.
async fn check_task_limit(
    conn: &mut PgConnection,
    settings: CommandSettings,
    user: Uuid,
) -> Result<(), WriteError> {
    match tasks::count_all(conn, user).await? > i64::from(settings.max_tasks_per_user) {
        true => Err(WriteError::TaskLimit(settings.max_tasks_per_user)),
        false => Ok(()),
    }
}

async fn locked_live(
    conn: &mut PgConnection,
    user: Uuid,
    id: Uuid,
    if_match: &IfMatch,
) -> Result<Task, WriteError> {
    let current = tasks::lock_live(conn, user, id).await?.ok_or(WriteError::NotFound)?;
    if_match.check(current.version)?;
    Ok(current)
}

/// Writes a full new state over `current`, keeping its place in a series.
async fn rewrite(conn: &mut PgConnection, current: &Task, fields: TaskFields) -> Result<Outcome, WriteError> {
    fields.check().map_err(WriteError::Invalid)?;
    if fields.project_id != current.project_id {
        lock_target_project(conn, current.user_id, fields.project_id).await?;
    }
    // A new rule, zone, anchor or due time restarts the series' expansion at this occurrence:
    // moving one occurrence moves the rest with it.
    let restarts = current.recurrence_rule.as_deref() != fields.recurrence_rule.as_ref().map(|r| r.as_str())
        || current.due_at != fields.due_at
        || current.timezone != fields.timezone.name()
        || current.recurrence_anchor != fields.recurrence_anchor;
    let start = if restarts { fields.due_at } else { current.series_start.or(fields.due_at) };
    let series =
        match (current.series_id.zip(current.occurrence_at), fields.recurrence_rule.is_some(), fields.due_at)
        {
            (Some((id, occurrence_at)), _, _) => Some(Series {
                id,
                occurrence_at,
                index: current.series_index.unwrap_or(1),
                start: start.unwrap_or(occurrence_at),
            }),
            // Becoming recurring starts a series at the current due date.
            (None, true, Some(due)) => {
                Some(Series { id: current.id, occurrence_at: due, index: 1, start: due })
            }
            (None, _, _) => None,
        };
    let completed_at = match (fields.completed, current.completed) {
        (false, _) => None,
        (true, true) => current.completed_at,
        (true, false) => Some(now()),
    };
    let check_rule = restarts && fields.recurrence_rule.is_some();
    let derived = derive(&fields, series, completed_at, check_rule).await?;
    // `None`: the new state equals the stored one, so nothing is written and the version stays.
    let Some(updated) = tasks::update(conn, &NewTask::new(current.id, fields, series, derived)).await? else {
        return Ok(Outcome::Updated(current.clone()));
    };
    task_jobs::sync(conn, Some(current), &updated).await?;
    Ok(Outcome::Updated(updated))
}

/// The owner's time zone, read once per command (or batch).
async fn default_timezone(
    conn: &mut PgConnection,
    user: Uuid,
    cached: &mut Option<TimeZone>,
) -> Result<TimeZone, WriteError> {
    if let Some(zone) = cached {
        return Ok(*zone);
    }
    let name = tasks::user_timezone(conn, user).await?.ok_or(WriteError::NotFound)?;
    let zone = TimeZone::parse("timezone", &name).unwrap_or(TimeZone::UTC);
    *cached = Some(zone);
    Ok(zone)
}
