//! How a web process learns that its streams' users changed something elsewhere (another web
//! process, a worker, maintenance): every `sync.poll_interval_ms` it reads, in one statement, the
//! newest change number of each user with a stream open here, and wakes the streams whose user
//! moved on. Writes made by this process's own actors wake their streams at once (`Hub::wake`).
//!
//! Writes used to `NOTIFY` instead. PostgreSQL serialises the commits of notifying transactions
//! (one database-wide lock from pre-commit to the end of the commit), which cost the real-schema
//! INSERT 40% of its rate at 64 clients (`docs/performance.md`). A poll costs nothing while no
//! stream is open, and one index lookup per watched user per interval while streams are. A
//! user's change numbers are taken under their counts row's lock, so they become visible in
//! commit order: reading the head never skips a change, and a missed poll loses nothing, since
//! each poll compares against the last number heard.

use std::sync::Weak;
use std::time::Duration;

use uuid::Uuid;

use super::Hub;

/// Polls for as long as the hub lives, one poll per interval (a slow poll delays the next one
/// rather than queueing more).
pub async fn follow(hub: Weak<Hub>) {
    let Some(period) = hub.upgrade().map(|hub| Duration::from_millis(hub.settings.poll_interval_ms.max(1)))
    else {
        return;
    };
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        ticks.tick().await;
        let Some(strong) = hub.upgrade() else { return };
        let (users, heads) = strong.watched();
        if !users.is_empty() {
            match newer_heads(&strong.poll_pool, &users, &heads).await {
                Ok(newer) => {
                    if failing {
                        tracing::info!("streams' change numbers are readable again");
                        failing = false;
                    }
                    for (user, head) in newer {
                        strong.changed(user, head);
                    }
                }
                // Logged once per outage: the next poll compares against the same heads, so
                // nothing is lost meanwhile.
                Err(err) if !failing => {
                    tracing::warn!(%err, "cannot read the streams' change numbers; retrying");
                    failing = true;
                }
                Err(_) => {}
            }
        }
    }
}

/// The users among `users` whose newest change number is above the one given for them.
async fn newer_heads(
    pool: &sqlx::PgPool,
    users: &[Uuid],
    heads: &[i64],
) -> Result<Vec<(Uuid, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT c.user_id, c.change_seq
         FROM unnest($1::uuid[], $2::bigint[]) AS w(user_id, head)
         JOIN task_counts c ON c.user_id = w.user_id
         WHERE c.change_seq > w.head",
    )
    .bind(users)
    .bind(heads)
    .fetch_all(pool)
    .await
}
