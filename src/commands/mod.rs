//! Task writes. Each command runs as one transaction: lock, check preconditions, write, keep the
//! task's jobs in step, store the idempotent response, commit. The web process's per-user actors
//! are the only callers, so one user's commands run one at a time in each process; the row locks
//! and version checks here keep the invariants when several processes write at once.

pub mod accounts;
pub mod api_tokens;
mod bulk;
pub mod caldav;
pub mod calendar_feeds;
mod errors;
mod projects;
mod tasks;
mod tree;

pub use crate::domain::TaskChanges;
pub use bulk::{BatchItem, BulkOp};
pub use errors::WriteError;
pub use projects::ProjectChanges;

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::db::idempotency::{self, StoredResponse};
use crate::db::links;
use crate::db::projects::{Project, ProjectFields};
use crate::db::users;
use crate::domain::{Task, TaskFields, TimeZone};
use crate::jobs::EnqueueError;
use crate::links::Claims;

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
    pub(crate) fn check(&self, current_version: i64) -> Result<(), WriteError> {
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
        /// The email link that asked for it, spent in the write's transaction (see `run`).
        link: Option<Claims>,
    },
    /// Moves an open task's reminder, as the snooze links of a reminder email do. Unlike an
    /// update it may put the reminder after the due time, which stays as it was.
    Snooze {
        id: Uuid,
        reminder_at: chrono::DateTime<chrono::Utc>,
        if_match: IfMatch,
        link: Option<Claims>,
    },
    /// Removes the account with its tasks and queued jobs.
    DeleteAccount,
    CreateProject {
        /// The id a CalDAV client chose with the calendar's address; otherwise a new one.
        id: Option<Uuid>,
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
    /// A CalDAV client's PUT of a calendar object (see `caldav`).
    PutObject(Box<caldav::Put>),
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

    /// The email link whose press this command is.
    fn link(&self) -> Option<&Claims> {
        match self {
            Self::SetCompleted { link, .. } | Self::Snooze { link, .. } => link.as_ref(),
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

/// Runs one command for `user` in its own transaction.
pub async fn execute(
    pool: &PgPool,
    settings: CommandSettings,
    user: Uuid,
    command: &Command,
) -> Result<Outcome, WriteError> {
    let mut tree_first = false;
    let mut attempt = 1;
    loop {
        let result = run(pool, settings, user, command, tree_first).await;
        let Err(err) = &result else { return result };
        match retry(err) {
            // Another process committed the same key meanwhile; running again replays its answer.
            Some(Retry::Idempotency) if attempt == 1 => {}
            // The locks are taken in one order everywhere; should two writes still deadlock, the
            // loser was rolled back whole, and running it once more is safe.
            Some(Retry::Deadlock) if attempt == 1 => {}
            // The task tree was busy: run again, waiting for its lock before any task row.
            Some(Retry::Tree) if attempt <= 3 => tree_first = true,
            _ => return result,
        }
        attempt += 1;
    }
}

enum Retry {
    Idempotency,
    Deadlock,
    Tree,
}

fn retry(err: &WriteError) -> Option<Retry> {
    match err {
        WriteError::IdempotencyRace => Some(Retry::Idempotency),
        WriteError::TreeBusy => Some(Retry::Tree),
        WriteError::InBatch { error, .. } => retry(error),
        WriteError::Database(sqlx::Error::Database(db)) => match db.code().as_deref() {
            Some("40P01") => Some(Retry::Deadlock),
            // The tree check at commit found the tree lock held by another write.
            Some("40001") => Some(Retry::Tree),
            _ => None,
        },
        _ => None,
    }
}

impl Command {
    /// Whether the command sets a task's parent, and so takes the tree lock before any row.
    fn sets_parent(&self) -> bool {
        match self {
            Self::Create { task, .. } | Self::Replace { task, .. } => task.parent_id.is_some(),
            Self::Update { changes, .. } => changes.parent_id != crate::domain::Patch::Absent,
            Self::Bulk { operations, .. } => operations.iter().any(BulkOp::sets_parent),
            // It may set a parent, or make a series' next occurrence, which takes the tree lock.
            Self::PutObject(_) => true,
            _ => false,
        }
    }
}

async fn run(
    pool: &PgPool,
    settings: CommandSettings,
    user: Uuid,
    command: &Command,
    tree_first: bool,
) -> Result<Outcome, WriteError> {
    if let Command::Create { task, idempotency: None } = command
        && let Some(fields) = tasks::simple_create(task)
    {
        return tasks::create_in_one_statement(pool, settings, user, fields).await;
    }
    let ttl_hours = settings.idempotency_ttl_hours;
    let mut tx = pool.begin().await?;
    // A link's use commits with its action, or not at all: a press that fails (or a crash
    // before commit) leaves the link working, and of two presses only one acts. Recorded
    // first, so a second press waits here on the first's row, before any lock of the write.
    if let Some(claims) = command.link()
        && !links::redeem(&mut tx, claims).await?
    {
        return Err(WriteError::LinkUsed);
    }
    // Storing the response key-share locks the account (the key's foreign key). Take that lock
    // first, before any task row: account deletion locks the account and then its tasks, and
    // taking them in the other order deadlocks against it.
    // A batch also inserts (its creates take the same key-share lock) after locking task rows,
    // and a create into a project locks the user's counter and the project before its insert
    // takes the user's row: both take the user's row first instead.
    let inserts_after_locking =
        matches!(command, Command::Bulk { .. } | Command::Create { .. } | Command::PutObject(_));
    if (command.idempotency().is_some() || inserts_after_locking)
        && !users::lock_key_share(&mut tx, user).await?
    {
        return Err(WriteError::NotFound);
    }
    // The user's tree lock, at the user's step of the lock order (see `tree`).
    if tree_first || command.sets_parent() {
        crate::db::tasks::tree::lock(&mut tx, user).await?;
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
        Command::CreateProject { id, project, .. } => projects::create(conn, user, *id, project).await,
        Command::UpdateProject { id, changes, if_match } => {
            projects::update(conn, user, *id, changes, if_match).await
        }
        Command::DeleteProject { id, if_match } => projects::delete(conn, user, *id, if_match).await,
        Command::PutObject(put) => caldav::put(conn, settings, user, put).await,
        other => tasks::apply(conn, settings, user, other, &mut None).await,
    }
}
