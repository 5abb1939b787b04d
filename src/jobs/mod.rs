//! Background jobs, behind one seam. A job kind is one file in this folder: its payload, its
//! queue name, its handler and the settings it runs with, as an impl of [`Job`]. The worker
//! registers a queue for every kind in [`for_each_kind`] and sizes its pool from the same list.
//!
//! **A new job kind** is its file plus one line in [`for_each_kind`] (and its `mod` line).
//!
//! The serialized payload is the only contract between the web and worker processes. Jobs are
//! enqueued with [`enqueue`] inside the transaction of the write that causes them, so a job
//! exists exactly when its cause committed.

use std::future::Future;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::PgPool;

use crate::config::{PublicUrl, ReminderCaps, WorkerSettings};
use crate::db::maintenance::Retention;
use crate::email::Mailer;
use crate::links::LinkKeys;

pub mod agenda;
mod enqueue;
pub mod maintenance;
mod outcome;
pub mod recurrence;
pub mod reminder;
pub mod task_jobs;
pub mod verification;
pub mod webhook;
pub mod webhook_notice;

pub use enqueue::{EnqueueError, Schedule, cancel_for_owner, enqueue};
pub use outcome::{AttemptInfo, Handled, JobError};

/// Every job kind, in the order the worker registers their queues.
pub fn for_each_kind(kinds: &mut impl Kinds) {
    kinds.add::<reminder::Reminder>();
    kinds.add::<recurrence::NextOccurrence>();
    kinds.add::<maintenance::Maintenance>();
    kinds.add::<verification::Verification>();
    kinds.add::<agenda::Agenda>();
    kinds.add::<webhook::WebhookSend>();
    kinds.add::<webhook_notice::WebhookDisabled>();
}

/// A job kind: a payload that knows its queue, how to run, and how many may run at once.
pub trait Job: Serialize + DeserializeOwned + Send + Sync + Unpin + 'static {
    /// Explicit, because apalis would otherwise name the queue after the Rust type path, which
    /// changes when code moves.
    const QUEUE: &'static str;

    /// Jobs of this kind one worker process runs at once (each holds a pool connection).
    fn concurrency(_settings: &WorkerSettings) -> usize {
        1
    }

    /// Runs the job once. A job is a hint that something may be due, never proof that it still
    /// is, so a handler re-reads what it acts on and is safe to run twice.
    fn handle(
        &self,
        ctx: &Context,
        attempt: AttemptInfo,
    ) -> impl Future<Output = Result<Handled, JobError>> + Send;
}

/// Something done once per job kind, such as registering its queue.
pub trait Kinds {
    fn add<J: Job>(&mut self);
}

/// Every queue this service's jobs travel on.
pub fn queues() -> Vec<&'static str> {
    struct Names(Vec<&'static str>);
    impl Kinds for Names {
        fn add<J: Job>(&mut self) {
            self.0.push(J::QUEUE);
        }
    }
    let mut names = Names(Vec::new());
    for_each_kind(&mut names);
    names.0
}

/// What handlers get from the worker process; cloned per job, so everything in it is a cheap
/// handle.
#[derive(Clone)]
pub struct Context {
    pub pool: PgPool,
    pub mailer: Arc<Mailer>,
    /// Tasks one account may hold; new occurrences obey it too.
    pub max_tasks: u32,
    pub retention: Retention,
    /// Signs the links emails carry.
    pub links: LinkKeys,
    /// The origin those links point at.
    pub public_url: PublicUrl,
    pub reminder_caps: ReminderCaps,
    /// The webhook client, its retry schedule and settings.
    pub webhooks: crate::webhooks::Outbound,
}

impl Context {
    /// The complete and snooze links an email offers for one task, each with its own signed,
    /// single-use token naming the email's `anchor`.
    pub fn action_links(
        &self,
        user_id: uuid::Uuid,
        task_id: uuid::Uuid,
        anchor: crate::links::Anchor,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Vec<crate::email::reminder::ActionLink> {
        use crate::links::{Action, Claims, Purpose, TaskAction};
        Action::ALL
            .into_iter()
            .map(|action| {
                let subject = TaskAction { task_id, anchor, action };
                let token =
                    self.links.sign(&Claims::new(Purpose::TaskAction, user_id, subject.subject(), now));
                let url = self.public_url.join(&format!("{}?token={token}", crate::links::paths::TASK));
                crate::email::reminder::ActionLink { label: action.label(), url }
            })
            .collect()
    }

    /// The one-click unsubscribe URL (RFC 8058) for one kind of email to `user_id`.
    pub fn unsubscribe_url(
        &self,
        user_id: uuid::Uuid,
        kind: crate::links::EmailKind,
        now: chrono::DateTime<chrono::Utc>,
    ) -> String {
        let claims =
            crate::links::Claims::new(crate::links::Purpose::Unsubscribe, user_id, kind.subject(), now);
        let token = self.links.sign(&claims);
        self.public_url.join(&format!("{}?token={token}", crate::links::paths::UNSUBSCRIBE))
    }
}
